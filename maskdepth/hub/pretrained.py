"""``maskdepth.WNet``: the W-Net with huggingface_hub's ``from_pretrained``, ``save_pretrained`` and
``push_to_hub``, each routed through maskdepth's own loader, writer, card and upload.

The architecture lives in :mod:`maskdepth.model.wnet` and knows nothing of files or the Hub; this
subclass adds them, so the model package never imports the Hub code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, PyTorchModelHubMixin

from maskdepth.hub.card import build_card
from maskdepth.hub.checkpoint import load_model as load_checkpoint
from maskdepth.hub.checkpoint import write_model_files
from maskdepth.model import wnet
from maskdepth.model.wnet import WNetConfig


class WNet(
    wnet.WNet,
    PyTorchModelHubMixin,
    library_name="maskdepth",
    tags=["depth-estimation", "image-segmentation", "maskdepth"],
    repo_url="https://github.com/maskdepth/maskdepth",
    license="mit",
    pipeline_tag="depth-estimation",
):
    """The W-Net (:class:`maskdepth.model.wnet.WNet`) with the Hub mixin's methods.

    ``from_pretrained`` is :func:`maskdepth.load_model` (strict, config validated),
    ``save_pretrained`` writes what :func:`maskdepth.save_model` writes, ``push_to_hub`` is
    :func:`maskdepth.push_to_hub`, and the card is :func:`maskdepth.hub.card.build_card`'s.
    """

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | Path,
        *,
        force_download: bool = False,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        revision: str | None = None,
        **model_kwargs: Any,
    ) -> WNet:
        """Load a folder, weights file or Hub repo id exactly like :func:`maskdepth.load_model`.

        Replaces the mixin's version, which reads config.json unvalidated (and from the endpoint
        fixed at import time) before handing over to :meth:`_from_pretrained`.
        """
        return cls._from_pretrained(
            model_id=str(pretrained_model_name_or_path),
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            local_files_only=local_files_only,
            token=token,
            **model_kwargs,
        )

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str = "cpu",
        strict: bool = True,
        **model_kwargs: Any,
    ) -> WNet:
        """The mixin's loading hook: :func:`maskdepth.hub.checkpoint.load_model` (strict, in eval mode)."""
        if not strict:
            raise ValueError("maskdepth loads W-Net weights strictly: drop strict=False")
        if model_kwargs:
            raise TypeError(
                f"unexpected arguments {sorted(model_kwargs)}: a W-Net's config comes from its config.json"
            )
        return load_checkpoint(
            model_id,
            model_class=cls,
            device=map_location,
            token=token,
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            local_files_only=local_files_only,
        )

    def _save_pretrained(self, save_directory: Path) -> None:
        """The mixin's saving hook: the weights and config.json exactly as ``save_model`` writes them."""
        write_model_files(self, Path(save_directory))

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The card ``save_pretrained`` writes: :func:`maskdepth.hub.card.build_card` of ``model_card_kwargs``."""
        return build_card({"model_config": self.config, **kwargs})

    def push_to_hub(  # type: ignore[override]  # returns the repo URL, like maskdepth.push_to_hub
        self,
        repo_id: str,
        *,
        token: str | None = None,
        private: bool | None = None,
        commit_message: str | None = None,
        model_card_kwargs: dict[str, Any] | None = None,
        config: dict | None = None,
    ) -> str:
        """Upload this model with :func:`maskdepth.push_to_hub` (checks, card, errors); returns the repo URL.

        ``model_card_kwargs`` is the card info (e.g. ``metrics``, ``dataset``, ``space_url``).
        """
        from maskdepth.hub.transfer import push_to_hub  # transfer builds on this module

        if config is not None and WNetConfig.from_dict(config) != self.cfg:
            raise ValueError(f"config {config} does not describe this model ({self.config})")
        return push_to_hub(
            self,
            repo_id,
            token=token,
            private=bool(private),
            card=model_card_kwargs,
            commit_message=commit_message,
        )


def load_model(source: str | Path, **kwargs: Any) -> WNet:
    """:func:`maskdepth.hub.checkpoint.load_model` (same arguments) returning a :class:`WNet` with the Hub methods."""
    return load_checkpoint(source, model_class=WNet, **kwargs)

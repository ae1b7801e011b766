"""Load and save W-Net weights: save_pretrained folders, seed checkpoints and safetensors files.

One loading entry point, :func:`load_model`, accepts

- a folder written by :func:`save_model` (``config.json`` + ``model.safetensors``, the
  ``save_pretrained`` layout, so ``WNet.from_pretrained`` reads it too);
- a ``.safetensors`` file;
- a seed checkpoint: a ``torch.save`` dict ``{'epoch', 'model_state_dict',
  'optimizer_state_dict', 'loss', 'acc'}`` or a bare state_dict, read with
  ``torch.load(weights_only=True)`` only; its config is inferred from the tensor shapes;
- a Hub repo id ``owner/name`` (downloaded by :mod:`maskdepth.hub.transfer`).

Every path loads strictly: a missing, extra or mis-shaped tensor is a :class:`CheckpointError`
naming what the file holds and what was expected, never a silently half-initialised model.
Configs are checked by :meth:`maskdepth.model.wnet.WNetConfig.validate` before anything is allocated.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from maskdepth import fileio
from maskdepth.errors import CheckpointError, InputError
from maskdepth.hub.api import REPO_ID_RE
from maskdepth.hub.download import download
from maskdepth.hub.weights import (
    CARD_NAME,
    CONFIG_NAME,
    WEIGHTS_NAME,
    is_safetensors,
    read_safetensors,
    read_torch_checkpoint,
    safetensors_metadata,
)
from maskdepth.model.wnet import WNet, WNetConfig

__all__ = ["load_model", "save_model", "weights_state", "write_model_files"]


_STEM_KEY = "inc.double_conv.0.weight"  # (base_width, in_channels, 3, 3)
_HEAD_KEY = "outc_mask.conv.weight"  # (out_channels, base_width, 1, 1)
_CHECKPOINT_SUFFIXES = {".pt", ".pth", ".ckpt", ".bin", ".tar", ".safetensors", ".json"}


# ----------------------------------------------------------------------------- loading
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "checkpoints"  # the default weights, in the repo
SHIPPED_REPO = "maskdepth/wnet-maskdepth"  # the same weights on the Hub (README front matter: models:)


def shipped_source(folder: str | os.PathLike = SHIPPED_DIR) -> str:
    """Where the default weights are: ``folder`` when it holds them (offline), else :data:`SHIPPED_REPO`.

    A Space preloads the repo (``preload_from_hub``), so the download is a cache hit there.
    """
    folder = Path(folder)
    if (folder / CONFIG_NAME).is_file() and (folder / WEIGHTS_NAME).is_file():
        return str(folder)
    return SHIPPED_REPO


def load_model(
    source: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    token: str | bool | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    force_download: bool = False,
    local_files_only: bool = False,
    model_class: type[WNet] = WNet,
) -> WNet:
    """Load a W-Net from a folder, a weights file, a seed checkpoint or a Hub repo id.

    Args:
        source: a ``save_model`` / ``save_pretrained`` folder, a ``.safetensors`` file, a
            seed checkpoint (``torch.save`` dict with ``model_state_dict``, or a bare
            state_dict), or a Hub repo id ``owner/name``.
        device: where to put the model (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
        token: Hub token for private repos (default: ``HF_TOKEN`` or the stored login).
        revision: Hub branch, tag or commit (default: ``main``). Ignored for local sources.
        cache_dir, force_download, local_files_only: as for ``huggingface_hub.snapshot_download``
            (what ``WNet.from_pretrained`` passes on).
        model_class: the class built (``maskdepth.WNet`` adds the Hub methods to the architecture).

    Returns:
        The model in ``eval()`` mode, float32, on ``device``.

    Raises:
        CheckpointError: the source cannot be read or does not hold W-Net weights.
        HubError: the Hub cannot be reached, rejects the token, or has no such repo.
        InputError: ``device`` is not available.
    """
    dev = _device(device)
    path = Path(source)
    if path.is_dir():
        model = load_folder(path, model_class=model_class)
    elif path.is_file():
        model = _load_file(path, model_class=model_class)
    elif _looks_like_repo_id(str(source)):
        snapshot = download(
            str(source),
            token=token,
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            local_files_only=local_files_only,
        )
        model = load_folder(snapshot, source=f"Hub repo {source}", model_class=model_class)
    else:
        raise CheckpointError(
            f"Cannot load {str(source)!r}: no such file or folder, and not a Hub repo id (owner/name). "
            "Pass a folder written by save_model, a .safetensors / seed .pt checkpoint, or a Hub repo id."
        )
    return model.to(dev).eval()


def _device(device: str | torch.device) -> torch.device:
    """Parse ``device`` and check it exists on this machine."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InputError(f"Unknown device {device!r} ({err}): use 'cpu', 'cuda', 'cuda:N' or 'mps'.") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"Device {device!r} is not available (no CUDA GPU visible to PyTorch): use device='cpu'."
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"Device {device!r} is not available (no Apple MPS backend): use device='cpu'.")
    return dev


def _looks_like_repo_id(text: str) -> bool:
    """``owner/name`` that is not obviously a local checkpoint path (``runs/x.pt``)."""
    return bool(REPO_ID_RE.match(text)) and Path(text).suffix.lower() not in _CHECKPOINT_SUFFIXES


def load_folder(folder: Path, *, source: str | None = None, model_class: type[WNet] = WNet) -> WNet:
    """Load ``config.json`` + ``model.safetensors`` from ``folder`` (strict)."""
    source = source or str(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        found = sorted(p.name for p in folder.iterdir())[:8] if folder.is_dir() else []
        raise CheckpointError(
            f"{source} has no {WEIGHTS_NAME} (it holds: {', '.join(found) or 'nothing'}). "
            "Pass a folder written by maskdepth.save_model, or the checkpoint file itself."
        )
    state = read_safetensors(weights, source=f"{source}/{WEIGHTS_NAME}")
    config_path = folder / CONFIG_NAME
    if config_path.is_file():
        config = _read_config(config_path, source=f"{source}/{CONFIG_NAME}")
        fix = (
            f"{CONFIG_NAME} must describe the weights next to it: fix it, or re-save the folder "
            "with save_model."
        )
    else:
        config = _infer_config(state, source=source)
        fix = ""
    return _build(state, config, source=source, fix=fix, model_class=model_class)


def _load_file(path: Path, model_class: type[WNet] = WNet) -> WNet:
    """Load a ``.safetensors`` file or a ``torch.save`` checkpoint (weights_only)."""
    if path.name == WEIGHTS_NAME and (path.parent / CONFIG_NAME).is_file():
        return load_folder(
            path.parent, model_class=model_class
        )  # the file of a saved folder: use its config too
    if is_safetensors(path):
        state = read_safetensors(path, source=str(path))
        stored = _safetensors_config(path)
        config = stored or _infer_config(state, source=str(path))
        return _build(state, config, source=str(path), fix="", model_class=model_class)
    state = read_torch_checkpoint(path)
    return _build(
        state, _infer_config(state, source=str(path)), source=str(path), fix="", model_class=model_class
    )


def _safetensors_config(path: Path) -> WNetConfig | None:
    """The config save_model stores in the safetensors metadata, if any (keeps image_size)."""
    meta = safetensors_metadata(path)
    if "config" not in meta:
        return None
    return _check_config(
        _parse_json(meta["config"], source=f"the config in {path}'s metadata"), f"{path} metadata"
    )


def _infer_config(state: Mapping[str, torch.Tensor], *, source: str) -> WNetConfig:
    """``in_channels`` / ``base_width`` / ``out_channels`` from the tensor shapes (image_size: default)."""
    stem = state.get(_STEM_KEY)
    if stem is None or stem.ndim != 4:
        keys = ", ".join(list(state)[:5])
        raise CheckpointError(
            f"{source} does not hold W-Net weights: it has no 4-D '{_STEM_KEY}' tensor (the W-Net stem); "
            f"it holds {len(state)} tensors, first keys: {keys or 'none'}. Expected a maskdepth folder "
            f"({CONFIG_NAME} + {WEIGHTS_NAME}), a seed checkpoint with 'model_state_dict', "
            "or a W-Net state_dict."
        )
    head = state.get(_HEAD_KEY)
    config = WNetConfig(
        in_channels=int(stem.shape[1]),
        out_channels=int(head.shape[0]) if head is not None and head.ndim == 4 else 1,
        base_width=int(stem.shape[0]),
    )
    try:
        return config.validate()
    except ValueError as err:
        shapes = f"its stem '{_STEM_KEY}' has shape {tuple(stem.shape)}"
        if head is not None:
            shapes += f" and its head '{_HEAD_KEY}' {tuple(head.shape)}"
        raise CheckpointError(
            f"{source}: {shapes}, i.e. in_channels {config.in_channels}, base width {config.base_width}, "
            f"out_channels {config.out_channels}; the W-Net {err}. This is not a maskdepth checkpoint."
        ) from None


def _parse_json(text: str, *, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CheckpointError(
            f"{source} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}): "
            "fix it, or re-save the model with maskdepth.save_model."
        ) from err


def _read_config(path: Path, *, source: str) -> WNetConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointError(
            f"Cannot read {source} ({err}): check the file, or re-save the folder."
        ) from err
    return _check_config(_parse_json(text, source=source), source)


def _check_config(raw: Any, source: str) -> WNetConfig:
    """:meth:`WNetConfig.from_dict`, its ValueError turned into a CheckpointError naming ``source``."""
    try:
        return WNetConfig.from_dict(raw)
    except ValueError as err:
        raise CheckpointError(
            f"{source}: {err}. Fix the value, or re-save the model with maskdepth.save_model."
        ) from None


def _build(
    state: dict[str, torch.Tensor], config: WNetConfig, *, source: str, fix: str, model_class: type[WNet]
) -> WNet:
    """Build ``WNet`` of ``config`` and load ``state`` into it with strict=True (float32)."""
    model = model_class.from_config(config)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or reshaped:
        wanted = f"in_channels={config.in_channels}, out_channels={config.out_channels}, "
        wanted += f"base_width={config.base_width}"
        parts = []
        if reshaped:
            shown = "; ".join(
                f"{k}: file {tuple(state[k].shape)}, expected {tuple(expected[k].shape)}"
                for k in reshaped[:3]
            )
            parts.append(f"{len(reshaped)} tensors have another shape ({shown})")
        if missing:
            parts.append(f"{len(missing)} W-Net tensors are missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(
                f"{len(unexpected)} tensors are not part of a W-Net (e.g. {', '.join(unexpected[:3])})"
            )
        hint = ""
        try:
            held = _infer_config(state, source=source)
            if (held.in_channels, held.base_width, held.out_channels) != (
                config.in_channels,
                config.base_width,
                config.out_channels,
            ):
                hint = (
                    f" The weights look like in_channels={held.in_channels}, "
                    f"base_width={held.base_width}, out_channels={held.out_channels}."
                )
        except CheckpointError:
            hint = " The file does not look like a W-Net at all (another architecture?)."
        raise CheckpointError(
            f"{source} does not match WNet({wanted}): {'; '.join(parts)}.{hint} {fix}".rstrip()
        )
    for key, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(
                f"{source}: tensor '{key}' holds NaN or infinite values (the run diverged, or fp16 "
                "overflowed): use an earlier checkpoint."
            )
    # fp16/bf16 weights are cast up to the model's float32; num_batches_tracked stays int64.
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
    return model


# ----------------------------------------------------------------------------- saving
def weights_state(model: WNet, *, fp16: bool = False) -> dict[str, torch.Tensor]:
    """The state_dict as contiguous CPU tensors, ready for safetensors (optionally float16)."""
    state: dict[str, torch.Tensor] = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu")
        if fp16 and tensor.is_floating_point():
            tensor = tensor.to(torch.float16)
            if not torch.isfinite(tensor).all():
                raise CheckpointError(
                    f"Tensor '{key}' overflows float16 (|x| > 65504): save with fp16=False."
                )
        state[key] = tensor.contiguous()
    return state


def write_model_files(model: WNet, folder: Path, *, fp16: bool = False) -> None:
    """Write ``model.safetensors`` (config in its metadata) + ``config.json`` into an existing folder.

    The one writer of the save_pretrained layout: :func:`save_model` calls it on a temp folder,
    ``WNet.save_pretrained`` (the mixin's ``_save_pretrained`` hook) on the target folder.
    """
    state = weights_state(model, fp16=fp16)
    config = json.dumps(model.config)
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "pt", "config": config})
    (folder / CONFIG_NAME).write_text(
        json.dumps(model.config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def save_model(
    model: WNet, folder: str | os.PathLike, *, card: dict | None = None, fp16: bool = False
) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (+ ``README.md`` if ``card``) into ``folder``.

    The files are written into a temp folder next to ``folder`` and swapped in with renames
    (:func:`maskdepth.fileio.replace_folder`), so a crash never leaves a half-written folder and an
    existing good one is not lost (other files already in ``folder``, e.g. a run's ``last.pt``, are kept).

    Args:
        model: the W-Net to save (any device; saved from CPU copies).
        folder: destination folder; created if needed.
        card: if given, the info dict for :func:`maskdepth.hub.card.model_card`, written as ``README.md``.
        fp16: store floating tensors as float16 (half the size; loads back as float32).

    Returns:
        The folder path.
    """
    if not isinstance(model, WNet):
        raise TypeError(f"save_model expects a maskdepth WNet, got {type(model).__name__}")
    readme = None
    if card is not None:
        from maskdepth.hub.card import model_card

        readme = model_card({"model_config": model.config, **card})

    def write(tmp: Path) -> None:
        write_model_files(model, tmp, fp16=fp16)
        if readme is not None:
            (tmp / CARD_NAME).write_text(readme, encoding="utf-8")

    return fileio.replace_folder(Path(folder), write)

"""Share W-Nets and the app on the Hugging Face Hub: push, pull, download, publish a Space.

- :func:`push_to_hub` uploads a model (a :class:`WNet`, a run / ``save_model`` folder such as
  the shipped ``checkpoints/``, or a checkpoint file) to a model repo, with the card of
  :func:`maskdepth.hub.card.build_card` carrying the real repo id;
- :func:`pull` and :func:`download` fetch one back (strictly validated, cache-aware, offline-aware);
- :func:`publish_space` uploads the app folder to a Gradio Space.

Connection details and error messages live in :mod:`maskdepth.hub.api`; loading and saving in
:mod:`maskdepth.hub.checkpoint`. Tokens never reach a message, a log line or an uploaded file.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from maskdepth import fileio
from maskdepth.errors import CheckpointError, HubError, InputError
from maskdepth.hub.api import (
    TOKENS_URL,
    check_repo_id,
    hub_endpoint,
    hub_errors,
    is_offline,
    is_repo_id,
    probe,
    resolve_token,
)
from maskdepth.hub.card import card_info, model_card, redact, scrub
from maskdepth.hub.checkpoint import load_folder, load_model, save_model
from maskdepth.hub.download import download
from maskdepth.hub.weights import CARD_NAME, CONFIG_NAME, HUB_FILES, WEIGHTS_NAME
from maskdepth.model.wnet import WNet

logger = logging.getLogger(__name__)

__all__ = ["push_to_hub", "pull", "download", "publish_space", "space_files", "Published", "is_repo_id"]

RUN_EXTRAS = ("metrics.json", "train_config.json")  # pushed along with a run folder when present
# What a Space runs: the app, the library, its requirements and Space card, the shipped weights
# (upload_folder sends the big ones through the Hub's large-file storage) and the examples.
SPACE_ALLOW = ("app.py", "requirements.txt", "README.md", "maskdepth/*", "checkpoints/*", "examples/*")
SPACE_ALLOW += ("recipes/*",)  # the Train tab's starting values (recipes/browser.toml)
SPACE_IGNORE = ("*/__pycache__/*", "*.pyc", ".*", "*/.*")  # caches, .env files, temp files


class Published(NamedTuple):
    """Where :func:`publish_space` put the app, and which files it uploaded (repo paths, sorted)."""

    url: str
    files: list[str]


# ----------------------------------------------------------------------------- models
def push_to_hub(
    source: str | os.PathLike | WNet,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    card: dict | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload a model or a run folder to the Hub repo ``repo_id`` (created if missing).

    Args:
        source: a :class:`WNet`, a run / ``save_model`` folder (``config.json`` +
            ``model.safetensors``; ``metrics.json`` and ``train_config.json`` go along if
            present), or a checkpoint file.
        repo_id: ``owner/name``.
        token: a write token (default: ``HF_TOKEN``, then the stored ``hf auth login`` token).
        private: create the repo private (ignored if it exists).
        card: card info (see :func:`maskdepth.hub.card.build_card`, e.g. ``space_url``) over what the
            folder's records say. The pushed README.md is always rebuilt, with ``repo_id`` in it.
        commit_message: defaults to "Upload W-Net with maskdepth".

    Returns:
        The repo URL.
    """
    check_repo_id(repo_id)
    token = resolve_token(token)
    endpoint = _online_endpoint("push")
    with tempfile.TemporaryDirectory(prefix="maskdepth-push-") as staging_root:
        staging = Path(staging_root) / "repo"
        _stage(source, staging, repo_id=repo_id, card=card, token=token)
        probe(endpoint)
        api = _api(endpoint, token)
        with hub_errors(endpoint, repo_id, token=token, writing=True):
            _check_write_access(api)
            url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            api.upload_folder(
                repo_id=repo_id,
                folder_path=staging,
                repo_type="model",
                commit_message=commit_message or "Upload W-Net with maskdepth",
            )
    logger.info("Pushed %s to %s", repo_id, url)
    return str(url)


def _stage(
    source: str | os.PathLike | WNet, staging: Path, *, repo_id: str, card: dict | None, token: str
) -> None:
    """Write exactly the files to upload into ``staging``, with secrets redacted."""
    if isinstance(source, WNet) or Path(source).is_file():
        model = source if isinstance(source, WNet) else load_model(source)
        save_model(model, staging, card={"repo_id": repo_id, **(card or {})})
        return
    path = Path(source)
    if not path.is_dir():
        raise CheckpointError(
            f"Cannot push {str(source)!r}: no such file or folder. Pass a run folder (config.json + "
            "model.safetensors), a checkpoint file, or a WNet."
        )
    model = load_model(path)  # strict check before anything leaves the machine
    staging.mkdir(parents=True)
    shutil.copyfile(path / WEIGHTS_NAME, staging / WEIGHTS_NAME)
    # The config is re-written from the loaded model: validated values, no stray keys.
    (staging / CONFIG_NAME).write_text(
        json.dumps(model.config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    for name in RUN_EXTRAS:
        if (path / name).is_file():
            text = (path / name).read_text(encoding="utf-8")
            try:
                text = json.dumps(scrub(json.loads(text)), indent=2) + "\n"
            except json.JSONDecodeError:
                pass
            (staging / name).write_text(redact(text, (token,)), encoding="utf-8")
    info = {**card_info(path), "model_config": model.config, "repo_id": repo_id, **(card or {})}
    (staging / CARD_NAME).write_text(redact(model_card(info), (token,)), encoding="utf-8")


def pull(
    repo_id: str, dest: str | os.PathLike, *, token: str | None = None, revision: str | None = None
) -> Path:
    """Download a Hub repo's ``config.json`` + ``model.safetensors`` (+ ``README.md``) into ``dest``.

    The download is validated by loading it strictly, then copied into ``dest`` atomically
    (see :func:`maskdepth.fileio.replace_folder`). Works from the local cache when offline.

    Returns:
        ``dest`` as a Path.
    """
    check_repo_id(repo_id)
    snapshot = download(repo_id, token=token, revision=revision)
    load_folder(snapshot, source=f"Hub repo {repo_id}")

    def write(tmp: Path) -> None:
        for name in HUB_FILES:
            if (snapshot / name).is_file():
                shutil.copyfile(snapshot / name, tmp / name)  # follows the cache's symlinks

    return fileio.replace_folder(Path(dest), write)


def publish_space(
    repo_id: str,
    app_folder: str | os.PathLike,
    *,
    token: str | None = None,
    private: bool = False,
    commit_message: str | None = None,
) -> Published:
    """Create (or reuse) the Gradio Space ``repo_id`` and upload the app folder to it.

    Only what a Space needs goes up (:data:`SPACE_ALLOW` minus :data:`SPACE_IGNORE`): ``app.py``,
    ``requirements.txt``, ``README.md`` (its front matter is the Space config), ``maskdepth/``,
    ``checkpoints/``, ``examples/`` and ``recipes/`` (the Train tab's defaults); never ``tests/``,
    ``bench/``, ``runs/``, ``.venv``, caches or dot-files. The shipped weights are checked by loading them strictly first.

    Returns:
        :class:`Published`: the Space URL and the uploaded repo paths.

    Raises:
        InputError: the folder is not an app folder (no app.py / requirements.txt / Space README).
        CheckpointError: ``checkpoints/`` does not load.
        HubError: as for :func:`push_to_hub`.
    """
    check_repo_id(repo_id)
    folder = Path(app_folder)
    _check_app_folder(folder)
    files = space_files(folder)
    token = resolve_token(token)
    endpoint = _online_endpoint("publish a Space")
    probe(endpoint)
    api = _api(endpoint, token)
    with hub_errors(endpoint, repo_id, token=token, writing=True):
        _check_write_access(api)
        url = api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            repo_type="space",
            allow_patterns=list(SPACE_ALLOW),
            ignore_patterns=list(SPACE_IGNORE),  # a fresh list: upload_folder appends to it
            commit_message=commit_message or "Publish the maskdepth app",
        )
    logger.info("Published %d files to the Space %s", len(files), url)
    return Published(str(url), files)


def space_files(app_folder: str | os.PathLike) -> list[str]:
    """The repo paths :func:`publish_space` uploads from ``app_folder`` (upload_folder's own matcher)."""
    from huggingface_hub.utils import filter_repo_objects

    folder = Path(app_folder)
    roots = [folder / p.rstrip("/*") for p in SPACE_ALLOW]
    found = [p for root in roots if root.is_dir() for p in root.rglob("*") if p.is_file()]
    found += [root for root in roots if root.is_file()]
    paths = sorted(p.relative_to(folder).as_posix() for p in found)
    return list(
        filter_repo_objects(paths, allow_patterns=list(SPACE_ALLOW), ignore_patterns=list(SPACE_IGNORE))
    )


def _check_app_folder(folder: Path) -> None:
    """Fail before uploading anything if ``folder`` cannot run as a Gradio Space."""
    from huggingface_hub import SpaceCard

    missing = [name for name in ("app.py", "requirements.txt", "README.md") if not (folder / name).is_file()]
    if missing:
        raise InputError(
            f"{folder} is not an app folder: it has no {', '.join(missing)}. Pass the folder holding "
            "maskdepth's app.py (the project root)."
        )
    sdk = SpaceCard.load(folder / "README.md").data.get("sdk")
    if sdk != "gradio":
        raise InputError(
            f"{folder / 'README.md'} does not configure a Gradio Space (its front matter has sdk: {sdk}): "
            "add 'sdk: gradio' and 'app_file: app.py' to its YAML header."
        )
    if (folder / "checkpoints").is_dir():
        load_folder(folder / "checkpoints")


# ----------------------------------------------------------------------------- shared steps
def _online_endpoint(action: str) -> str:
    if is_offline():
        raise HubError(
            f"Cannot {action} while offline mode is on (HF_HUB_OFFLINE=1): unset HF_HUB_OFFLINE and retry."
        )
    return hub_endpoint()


def _api(endpoint: str, token: str) -> Any:
    from huggingface_hub import HfApi

    from maskdepth import __version__

    return HfApi(endpoint=endpoint, token=token, library_name="maskdepth", library_version=__version__)


def _check_write_access(api: Any) -> None:
    """A read-only token fails here with the fix, not later with a bare 403."""
    who: Mapping[str, Any] = api.whoami()
    role = ((who.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise HubError(
            f"The token for Hub user {who.get('name')!r} is read-only: create a write token at "
            f"{TOKENS_URL} and set HF_TOKEN (or pass token=...)."
        )

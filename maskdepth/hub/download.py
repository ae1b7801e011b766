"""Fetching a model repo's files from the Hub (or the local cache when offline or unreachable)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from maskdepth.errors import HubError
from maskdepth.hub.api import hub_endpoint, hub_errors, is_offline, probe
from maskdepth.hub.weights import HUB_FILES, WEIGHTS_NAME

logger = logging.getLogger(__name__)


def download(
    repo_id: str,
    *,
    token: str | bool | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    force_download: bool = False,
    local_files_only: bool = False,
) -> Path:
    """The cached snapshot folder of ``repo_id`` holding at least config.json + model.safetensors.

    Offline (``HF_HUB_OFFLINE=1``), with ``local_files_only``, or when the Hub does not answer,
    it is served from the local cache.
    """
    from huggingface_hub import constants, snapshot_download

    endpoint = hub_endpoint()
    offline = is_offline()
    unreachable: HubError | None = None
    if not (offline or local_files_only):
        try:
            probe(endpoint)
        except HubError as err:
            unreachable = err
            logger.warning("%s Looking for %s in the local cache.", err, repo_id)
    token_text = token if isinstance(token, str) else None
    with hub_errors(
        endpoint, repo_id, token=token_text, revision=revision, offline=offline, unreachable=unreachable
    ):
        folder = Path(
            snapshot_download(
                repo_id,
                repo_type="model",
                revision=revision,
                allow_patterns=list(HUB_FILES),
                token=token,
                endpoint=endpoint,
                cache_dir=cache_dir,
                force_download=force_download,
                local_files_only=offline or local_files_only or unreachable is not None,
            )
        )
    if not (folder / WEIGHTS_NAME).is_file():
        raise HubError(
            f"Hub repo {repo_id} has no {WEIGHTS_NAME} (cache: {cache_dir or constants.HF_HUB_CACHE}): it "
            "was not saved by maskdepth. Push it with maskdepth.push_to_hub, or pass another repo."
        )
    return folder


# ----------------------------------------------------------------------------- Spaces

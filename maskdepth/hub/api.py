"""Talking to the Hugging Face Hub: endpoint, offline mode, token, reachability, repo ids, errors.

The endpoint is read at call time (``HF_ENDPOINT``) rather than when huggingface_hub was
imported; a quick reachability probe comes first (so "no network" fails in seconds instead of
retrying for half a minute); every client failure becomes a one-line :class:`HubError` that
names the fix. Tokens never reach a message.

Written for huggingface_hub >= 2.4, < 3, whose HTTP client is ``httpx2`` (its declared
dependency): transport errors are ``httpx2`` exceptions, typed Hub errors come from
``huggingface_hub.errors``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from maskdepth.errors import HubError
from maskdepth.hub.card import redact

TOKENS_URL = "https://huggingface.co/settings/tokens"
PROBE_TIMEOUT_S = 5.0  # a Hub that does not answer a HEAD within this is "unreachable"
REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def is_repo_id(text: object) -> bool:
    """Whether ``text`` is a well-formed Hub repo id ``owner/name`` (the app and ``push``/``pull`` check with it)."""
    return isinstance(text, str) and bool(REPO_ID_RE.match(text)) and "--" not in text and ".." not in text


def check_repo_id(repo_id: str) -> None:
    if not is_repo_id(repo_id):
        raise HubError(
            f"{repo_id!r} is not a Hub repo id: use owner/name (letters, digits, '-', '_', '.'), "
            "e.g. 'alice/maskdepth-wnet'."
        )


def hub_endpoint() -> str:
    """The Hub URL, read now (``HF_ENDPOINT``) rather than when huggingface_hub was imported."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def is_offline() -> bool:
    from huggingface_hub import constants

    return constants.is_offline_mode() or constants._is_true(os.environ.get("HF_HUB_OFFLINE"))


def resolve_token(token: str | None) -> str:
    """The argument, else ``HF_TOKEN``, else the token stored by ``hf auth login``."""
    from huggingface_hub import get_token

    token = token or os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise HubError(
            f"No Hugging Face token found: create a write token at {TOKENS_URL} and set HF_TOKEN "
            "(or run `hf auth login`, or pass token=...)."
        )
    return token


def probe(endpoint: str) -> None:
    """Fail in seconds if nothing answers at ``endpoint`` (the client would retry for ~30 s)."""
    import httpx2
    from huggingface_hub.utils import get_session

    try:
        get_session().head(f"{endpoint}/", timeout=PROBE_TIMEOUT_S)
    except (httpx2.TransportError, httpx2.InvalidURL) as err:
        raise HubError(
            f"Cannot reach the Hugging Face Hub at {endpoint}: check your network connection and proxy "
            f"settings{' (HF_ENDPOINT is set)' if os.environ.get('HF_ENDPOINT') else ''}, or set "
            f"HF_HUB_OFFLINE=1 to use only cached models. ({type(err).__name__})"
        ) from err


@contextmanager
def hub_errors(
    endpoint: str,
    repo_id: str,
    *,
    token: str | None,
    revision: str | None = None,
    writing: bool = False,
    offline: bool = False,
    unreachable: HubError | None = None,
) -> Iterator[None]:
    """Turn huggingface_hub / httpx errors into one-line HubErrors that name the fix."""
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    def fail(message: str) -> HubError:
        return HubError(redact(message, (token,)))

    local = "" if Path(repo_id).exists() else f" (there is no local file or folder named {repo_id!r} either)"

    rejected = (
        f"The Hub rejected the token: create a {'write ' if writing else ''}token at {TOKENS_URL} and set "
        "HF_TOKEN (or run `hf auth login`, or pass token=...)."
    )
    try:
        yield
    except HubError:
        raise
    except ValueError as err:
        if "Invalid metadata in README.md" not in str(err):
            raise
        raise fail(
            f"The Hub rejected the README.md front matter ({' '.join(str(err).split()[4:])[:300]}): "
            "fix the YAML header of the README.md you upload."
        ) from err
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as err:
        offline = offline or isinstance(err, OfflineModeIsEnabled)
        raise fail(
            _cache_miss(err, endpoint, repo_id, local, offline=offline, unreachable=unreachable)
        ) from err
    except (httpx2.TransportError, httpx2.InvalidURL) as err:
        raise fail(
            f"Cannot reach the Hugging Face Hub at {endpoint}: check your network connection and proxy "
            f"settings, then retry. ({type(err).__name__})",
        ) from err
    except RevisionNotFoundError as err:
        raise fail(
            f"Revision {revision!r} not found in Hub repo {repo_id}: check the branch, tag or commit."
        ) from err
    except GatedRepoError as err:
        raise fail(
            f"Hub repo {repo_id} is gated: request access on {endpoint}/{repo_id}, then retry."
        ) from err
    except RepositoryNotFoundError as err:
        if writing:
            raise fail(
                f"Repo {repo_id} not found on the Hub, or this token cannot write to it. {rejected}"
            ) from err
        raise fail(
            f"Repo {repo_id} not found on the Hub at {endpoint}{local}: check the id, or log in "
            "(HF_TOKEN / `hf auth login`) if it is private.",
        ) from err
    except RemoteEntryNotFoundError as err:
        raise fail(
            f"Hub repo {repo_id} lacks a file maskdepth needs ({err.server_message}): push it again."
        ) from err
    except HfHubHTTPError as err:
        raise fail(_http_error(err, endpoint, repo_id, rejected)) from err


def _cache_miss(
    err: Exception, endpoint: str, repo_id: str, local: str, *, offline: bool, unreachable: HubError | None
) -> str:
    """Why a download had to come from the cache, and that the cache did not have it."""
    from huggingface_hub import constants

    if offline:
        return (
            f"Offline mode is on (HF_HUB_OFFLINE=1) and {repo_id} is not in the local cache "
            f"({constants.HF_HUB_CACHE}){local}: unset HF_HUB_OFFLINE to download it, or load a local folder."
        )
    if unreachable is not None:
        return f"{unreachable} {repo_id} is not in the local cache{local}."
    status = getattr(getattr(err.__cause__, "response", None), "status_code", None)
    answered = f" (it answered HTTP {status})" if status else ""
    return (
        f"Cannot download {repo_id} from {endpoint}{answered} and it is not in the local cache: "
        f"{_status_fix(status)}"
    )


def _http_error(err: Any, endpoint: str, repo_id: str, rejected: str) -> str:
    """The message for an HTTP error without a more specific huggingface_hub type."""
    status = err.response.status_code if err.response is not None else None
    server = f" Server said: {err.server_message}" if err.server_message else ""
    if status == 401:
        return f"{rejected}{server}"
    if status == 403:
        return (
            f"The Hub refused access to {repo_id} (HTTP 403): use a write token of a user or "
            f"organisation that owns '{repo_id.split('/')[0]}' (create one at {TOKENS_URL}) "
            f"and set HF_TOKEN.{server}"
        )
    return f"The Hub at {endpoint} answered HTTP {status} for {repo_id}: {_status_fix(status)}{server}"


def _status_fix(status: int | None) -> str:
    """What to do about an unexpected HTTP status (or none: a network problem)."""
    if status is None or status in (408, 429) or status >= 500:
        return "check your network connection, or retry later (the Hub may be busy or down)."
    return (
        "this server does not look like a Hugging Face Hub: check HF_ENDPOINT (unset it for huggingface.co)."
    )

"""Who a request comes from: the owner of a training job and, on a Space, of a folder of runs.

Locally the app has one owner, :data:`LOCAL`: every tab and API client sees (and can stop) the
same training, and all runs are in the runs folder. On a Space (``SPACE_ID`` set) a visitor is
the signed-in Hugging Face user, else an id kept in the browser's localStorage (a
``gr.BrowserState`` read on each page load, so a reload is the same visitor), else the Gradio
session (API clients). Each visitor's runs go in a folder of their own under the runs folder,
named by a keyed hash of the visitor (:func:`runs_folder`), so nobody can guess another's.

The key is ``MASKDEPTH_SECRET`` if set, else a random one kept in the runs folder (written with a
visitor's first run; on a mounted storage bucket it survives restarts, and so do the visitors'
folders), else one per process.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

LOCAL = "local"
SECRET_FILE = ".maskdepth-secret"
MAX_SESSIONS = 10_000  # session -> visitor entries remembered (oldest forgotten first)
STORAGE_KEY = "maskdepth-visitor"


class Visitors:
    """The session -> visitor map filled on page load, and the key that names visitors' folders."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = Path(runs_dir)
        self._sessions: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self._secret: str | None = None
        self._unsaved = False  # the key is new: write it to the runs folder with the first run

    @property
    def secret(self) -> str:
        if self._secret is None:
            self._secret = os.environ.get("MASKDEPTH_SECRET") or _read_secret(self.runs_dir)
            if self._secret is None:
                self._secret, self._unsaved = secrets.token_hex(16), True
        return self._secret

    def save_secret(self) -> None:
        """Keep a new key in the runs folder (a run is about to be written there); once."""
        secret = self.secret
        if self._unsaved:
            self._unsaved = False
            self._secret = _write_secret(self.runs_dir / SECRET_FILE, secret)

    def remember(self, session: str, visitor: str) -> None:
        with self._lock:
            self._sessions[session] = visitor
            self._sessions.move_to_end(session)
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)

    def of_session(self, session: str) -> str | None:
        with self._lock:
            return self._sessions.get(session)


def _read_secret(runs_dir: Path) -> str | None:
    try:
        return (runs_dir / SECRET_FILE).read_text().strip() or None
    except OSError:
        return None


def _write_secret(path: Path, value: str) -> str:
    """Write ``value`` to ``path`` unless it exists; returns the key in effect (the file's if it won)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value)
    except FileExistsError:
        return _read_secret(path.parent) or value  # another process wrote it first
    except OSError:
        pass  # a read-only runs folder: this process's key only
    return value


def signed_in_user(request: Any) -> str | None:
    """The Hugging Face user signed in with the app's LoginButton (or Gradio auth), else None."""
    name = getattr(request, "username", None)
    if name:
        return str(name)
    try:  # where Gradio keeps the sign-in (it injects gr.OAuthProfile from the same place)
        from gradio import oauth
        from gradio.helpers import _session_from_request

        info = oauth._get_valid_oauth_info_from_session(_session_from_request(request))
    except Exception:  # noqa: BLE001 - no session support: nobody is signed in
        return None
    user = (info or {}).get("userinfo") or {}
    return user.get("preferred_username") or None


def visitor_of(visitors: Visitors, request: Any, *, on_space: bool) -> str:
    """The owner of what ``request`` starts or stops (see the module docstring)."""
    if not on_space:
        return LOCAL
    user = signed_in_user(request)
    if user:
        return f"user:{user}"
    session = getattr(request, "session_hash", None)
    if session:
        return visitors.of_session(session) or f"session:{session}"
    return "anonymous"


def runs_folder(visitors: Visitors, visitor: str) -> str:
    """The folder (under the runs folder) of a Space visitor's runs: ``visitor-`` + a keyed hash."""
    digest = hmac.new(visitors.secret.encode(), visitor.encode(), hashlib.sha256).hexdigest()
    return f"visitor-{digest[:20]}"


def on_page_load(visitors: Visitors, browser_id: str | None, request: Any) -> str:
    """The page-load step: the browser's id (a new one if it has none), remembered for its session."""
    browser_id = (
        browser_id if isinstance(browser_id, str) and len(browser_id) >= 16 else secrets.token_hex(16)
    )
    session = getattr(request, "session_hash", None)
    if session:
        visitors.remember(session, f"browser:{browser_id}")
    return browser_id

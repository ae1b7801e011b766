"""A local stand-in for the Hugging Face Hub HTTP API, for tests and benchmarks.

It serves, from memory, the routes that ``huggingface_hub`` 2.4's real client code uses for
``HfApi.whoami`` / ``create_repo`` (model repos, and Spaces with ``repo_type="space"``) /
``upload_folder`` (preupload + NDJSON commit, every file in "regular" mode so no LFS/Xet
storage is needed), ``repo_info``, ``list_repo_tree``,
``hf_hub_download`` and ``snapshot_download`` (HEAD/GET ``/{repo}/resolve/{rev}/{path}``
with the ETag / X-Repo-Commit / Content-Length headers the client requires).

Errors use the Hub's headers so the client raises its own typed errors: unknown (or private
without the token) repo -> 404 ``X-Error-Code: RepoNotFound``; unknown revision -> 404
``RevisionNotFound``; missing file -> 404 ``EntryNotFound``; a wrong token -> 401
"Invalid credentials in Authorization header"; writing to another namespace -> 403.

Usage::

    with FakeHub(token="test-token") as hub:
        os.environ["HF_ENDPOINT"] = hub.endpoint   # read by maskdepth.hub.transfer at call time
        ...

Standalone (e.g. for a benchmark): ``python tests/support/fakehub.py --port 8123 --token secret``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

DEFAULT_TOKEN = "test-write-token-4b9e2d71"
DEFAULT_USER = "tester"
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
_ISO_TIME = "%Y-%m-%dT%H:%M:%S.000Z"


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob: what the Hub sends as ETag / tree ``oid`` for regular files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Commit:
    """One commit: the full file tree after it (path -> bytes)."""

    oid: str
    message: str
    files: dict[str, bytes]


@dataclass
class FakeRepo:
    """A model repo or a Space held in memory: its commits and branches."""

    repo_id: str
    private: bool
    repo_type: str = "model"
    sdk: str | None = None  # a Space's SDK ("gradio", ...)
    commits: list[Commit] = field(default_factory=list)
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit oid
    created: str = field(default_factory=lambda: time.strftime(_ISO_TIME, time.gmtime()))

    def resolve(self, revision: str) -> Commit | None:
        """The commit a branch name or a full commit oid points at, else None."""
        oid = self.branches.get(revision, revision)
        return next((c for c in self.commits if c.oid == oid), None)

    @property
    def files(self) -> dict[str, bytes]:
        """Files on the main branch."""
        head = self.resolve("main")
        return dict(head.files) if head else {}


@dataclass
class Reply:
    """An HTTP reply: status, headers, body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(payload).encode()
    )


def _error(status: int, message: str, code: str | None = None, **headers: str) -> Reply:
    extra = {"X-Error-Message": message, **headers}
    if code:
        extra["X-Error-Code"] = code
    return _json(status, {"error": message}, extra)


_REPO = r"(?P<repo>[^/]+/[^/]+)"
_API = r"^/api/(?P<kind>models|spaces)"  # the client's URL prefix per repo type
_FILES = r"^/(?:(?P<kind>spaces)/)?"  # file URLs: /{repo}/resolve/... or /spaces/{repo}/resolve/...
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/api/whoami-v2$"), "whoami"),
    ("POST", re.compile(r"^/api/repos/create$"), "create_repo"),
    ("POST", re.compile(r"^/api/validate-yaml$"), "validate_yaml"),
    ("GET", re.compile(rf"{_API}/{_REPO}$"), "repo_info"),
    ("GET", re.compile(rf"{_API}/{_REPO}/revision/(?P<rev>[^/]+)$"), "repo_info"),
    ("GET", re.compile(rf"{_API}/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$"), "tree"),
    ("POST", re.compile(rf"{_API}/{_REPO}/preupload/(?P<rev>[^/]+)$"), "preupload"),
    ("POST", re.compile(rf"{_API}/{_REPO}/commit/(?P<rev>[^/]+)$"), "commit"),
    ("HEAD", re.compile(rf"{_FILES}{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
    ("GET", re.compile(rf"{_FILES}{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
]


class FakeHub:
    """An in-memory Hub on 127.0.0.1, served by a ``ThreadingHTTPServer`` in a daemon thread.

    Args:
        token: the only token accepted (as ``Authorization: Bearer <token>``).
        user: the user that token belongs to; it may write to ``user/*`` and ``orgs``.
        orgs: organisations the user may also write to.
        token_role: ``"write"`` or ``"read"`` (reported by whoami; a read token cannot write).
        port: 0 picks a free port.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        user: str = DEFAULT_USER,
        orgs: tuple[str, ...] = (),
        token_role: str = "write",
        port: int = 0,
    ):
        self.token = token
        self.user = user
        self.orgs = tuple(orgs)
        self.token_role = token_role
        self.repos: dict[str, FakeRepo] = {}  # model repos
        self.spaces: dict[str, FakeRepo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def endpoint(self) -> str:
        """Base URL to use as ``HF_ENDPOINT``."""
        if self._server is None:
            raise RuntimeError("FakeHub is not started: call start() or use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        """Bind the port and serve in a background thread."""
        server = ThreadingHTTPServer(("127.0.0.1", self._port), _Handler)
        server.daemon_threads = True
        server.hub = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fakehub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers for tests
    def add_repo(self, repo_id: str, files: dict[str, bytes], *, private: bool = False) -> FakeRepo:
        """Create (or replace) a repo holding ``files`` on main, without going through HTTP."""
        with self._lock:
            repo = self._new_repo(repo_id, private)
            self._add_commit(repo, "main", dict(repo.files, **files), "add files")
            return repo

    def all_bytes(self) -> Iterator[tuple[str, str, bytes]]:
        """Every stored file of every commit, as (repo_id, path, content)."""
        with self._lock:
            for repo in [*self.repos.values(), *self.spaces.values()]:
                for commit in repo.commits:
                    for path, data in commit.files.items():
                        yield repo.repo_id, path, data

    # ------------------------------------------------------------------ request handling
    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        """Route one request. ``headers`` keys are lower-case."""
        parts = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append((method, parts.path))
            auth = headers.get("authorization")
            user: str | None = None
            if auth is not None:
                if auth.partition(" ")[2] != self.token:
                    return _error(401, "Invalid credentials in Authorization header")
                user = self.user
            if parts.path == "/" and method in ("GET", "HEAD"):
                return Reply(200, {"Content-Type": "text/plain"}, b"fake hub\n")
            for route_method, pattern, name in _ROUTES:
                match = pattern.match(parts.path)
                if match and route_method == method:
                    groups = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                    groups["kind"] = "spaces" if groups.get("kind") == "spaces" else "models"
                    return getattr(self, f"_{name}")(
                        user=user, query=query, body=body, method=method, **groups
                    )
            return _error(404, f"Sorry, we can't find the page you are looking for ({method} {parts.path}).")

    def _new_repo(self, repo_id: str, private: bool, sdk: str | None = None) -> FakeRepo:
        repo = FakeRepo(repo_id=repo_id, private=private, repo_type="space" if sdk else "model", sdk=sdk)
        (self.spaces if sdk else self.repos)[repo_id] = repo
        self._add_commit(repo, "main", {".gitattributes": GITATTRIBUTES}, "initial commit")
        return repo

    def _add_commit(self, repo: FakeRepo, branch: str, files: dict[str, bytes], message: str) -> Commit:
        seed = f"{repo.repo_id}:{next(self._counter)}:{message}:{sorted(files)}".encode()
        commit = Commit(oid=hashlib.sha1(seed).hexdigest(), message=message, files=files)
        repo.commits.append(commit)
        repo.branches[branch] = commit.oid
        return commit

    def _readable(self, repo_id: str, user: str | None, kind: str = "models") -> FakeRepo | Reply:
        repo = (self.spaces if kind == "spaces" else self.repos).get(repo_id)
        if repo is None or (repo.private and user is None):
            return _error(404, "Repository not found", "RepoNotFound")
        return repo

    def _readable_at(
        self, repo_id: str, user: str | None, rev: str, kind: str = "models"
    ) -> tuple[FakeRepo, Commit] | Reply:
        """The repo and its commit at ``rev``, or the Hub's 404 for a missing repo or revision."""
        repo = self._readable(repo_id, user, kind)
        if isinstance(repo, Reply):
            return repo
        commit = repo.resolve(rev)
        if commit is None:
            return _error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return repo, commit

    def _writable(self, repo_id: str, user: str | None, kind: str = "models") -> FakeRepo | Reply:
        repo = self._readable(repo_id, user, kind)
        if isinstance(repo, Reply):
            return repo
        if user is None:
            return _error(401, "You must be authenticated to write to this repo")
        if repo_id.split("/")[0] not in (user, *self.orgs) or self.token_role != "write":
            return _error(403, f"You don't have the rights to write to {repo_id}")
        return repo

    def _whoami(self, *, user: str | None, **_: Any) -> Reply:
        if user is None:
            return _error(401, "Invalid credentials in Authorization header")
        return _json(
            200,
            {
                "type": "user",
                "name": user,
                "fullname": user.title(),
                "orgs": [{"name": org, "type": "org"} for org in self.orgs],
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": "fake", "role": self.token_role},
                },
            },
        )

    def _create_repo(self, *, user: str | None, body: bytes, **_: Any) -> Reply:
        if user is None:
            return _error(401, "Invalid credentials in Authorization header")
        payload = json.loads(body or b"{}")
        kind = payload.get("type") or "model"
        if kind not in ("model", "space"):
            return _error(400, "The fake hub only holds model repos and Spaces")
        if kind == "space" and not payload.get("sdk"):
            return _error(400, "A Space needs an sdk")
        namespace = payload.get("organization") or user
        repo_id = f"{namespace}/{payload['name']}"
        url = f"{self.endpoint}/{'spaces/' if kind == 'space' else ''}{repo_id}"
        if namespace not in (user, *self.orgs) or self.token_role != "write":
            return _error(
                403, f"You don't have the rights to create a model under the namespace {namespace!r}"
            )
        if repo_id in (self.spaces if kind == "space" else self.repos):
            return _json(409, {"error": f"You already created this {kind} repo", "url": url})
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        self._new_repo(repo_id, private, payload.get("sdk") if kind == "space" else None)
        return _json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self, *, body: bytes, **_: Any) -> Reply:
        """Check a README.md's YAML front matter the way upload_folder expects (errors -> 400)."""
        content = json.loads(body or b"{}").get("content", "")
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, flags=re.DOTALL)
        errors: list[str] = []
        if match:
            try:
                meta = yaml.safe_load(match.group(1))
            except yaml.YAMLError as err:
                meta, errors = None, [f"Invalid YAML: {err}"]
            if not errors and not isinstance(meta, dict):
                errors = ["The YAML front matter must be a mapping"]
            elif not errors:
                if not isinstance(meta.get("license", ""), str):
                    errors.append('"license" must be a string')
                tags = meta.get("tags", [])
                if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                    errors.append('"tags" must be a list of strings')
        if errors:
            return _json(400, {"errors": [{"message": e} for e in errors], "warnings": []})
        return _json(200, {"errors": [], "warnings": []})

    def _repo_info(self, *, user: str | None, repo: str, kind: str, rev: str = "main", **_: Any) -> Reply:
        at = self._readable_at(repo, user, rev, kind)
        if isinstance(at, Reply):
            return at
        found, commit = at
        return _json(
            200,
            {
                "_id": hashlib.md5(repo.encode()).hexdigest()[:24],
                "id": repo,
                "modelId": repo,
                "author": repo.split("/")[0],
                "sha": commit.oid,
                "lastModified": found.created,
                "createdAt": found.created,
                "private": found.private,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                **({"sdk": found.sdk} if found.sdk else {"library_name": "maskdepth"}),
                "siblings": [{"rfilename": path} for path in sorted(commit.files)],
            },
        )

    def _tree(
        self,
        *,
        user: str | None,
        repo: str,
        kind: str,
        rev: str,
        query: dict[str, str],
        path: str = "",
        **_: Any,
    ) -> Reply:
        at = self._readable_at(repo, user, rev, kind)
        if isinstance(at, Reply):
            return at
        _, commit = at
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        recursive = query.get("recursive", "").lower() in ("1", "true")
        entries: dict[str, dict[str, Any]] = {}
        for name, data in sorted(commit.files.items()):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            if not recursive and "/" in rest:
                folder = prefix + rest.split("/")[0]
                entries[folder] = {
                    "type": "directory",
                    "oid": git_blob_oid(folder.encode()),
                    "size": 0,
                    "path": folder,
                }
                continue
            entries[name] = {"type": "file", "oid": git_blob_oid(data), "size": len(data), "path": name}
        return _json(200, list(entries.values()))

    def _preupload(self, *, user: str | None, repo: str, kind: str, rev: str, body: bytes, **_: Any) -> Reply:
        found = self._writable(repo, user, kind)
        if isinstance(found, Reply):
            return found
        commit = found.resolve(rev)
        existing = commit.files if commit else {}
        files = json.loads(body or b"{}").get("files", [])
        out = []
        for item in files:
            old = existing.get(item["path"])
            out.append(
                {
                    "path": item["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": git_blob_oid(old) if old is not None else None,
                }
            )
        return _json(200, {"files": out, "commitOid": commit.oid if commit else None})

    def _commit(
        self,
        *,
        user: str | None,
        repo: str,
        kind: str,
        rev: str,
        body: bytes,
        query: dict[str, str],
        **_: Any,
    ) -> Reply:
        found = self._writable(repo, user, kind)
        if isinstance(found, Reply):
            return found
        if query.get("create_pr"):
            return _error(400, "The fake hub does not support pull requests")
        head = found.resolve(rev)
        if head is None or rev not in found.branches:
            return _error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        files = dict(head.files)
        message = "commit"
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item.get("key"), item.get("value", {})
            if key == "header":
                message = value.get("summary") or message
            elif key == "file":
                if value.get("encoding") != "base64":
                    return _error(400, f"Unsupported encoding {value.get('encoding')!r}")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    return _error(404, "A file with this name doesn't exist", "EntryNotFound")
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {p: d for p, d in files.items() if not p.startswith(folder)}
            else:
                return _error(400, f"The fake hub only takes regular files, got a {key!r} operation")
        commit = self._add_commit(found, rev, files, message)
        return _json(
            200,
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{self.endpoint}/{'spaces/' if kind == 'spaces' else ''}{repo}/commit/{commit.oid}",
            },
        )

    def _resolve(
        self, *, user: str | None, repo: str, kind: str, rev: str, path: str, method: str, **_: Any
    ) -> Reply:
        at = self._readable_at(repo, user, rev, kind)
        if isinstance(at, Reply):
            return at
        found, commit = at
        data = commit.files.get(path)
        if data is None:
            return _error(404, "Entry not found", "EntryNotFound", **{"X-Repo-Commit": commit.oid})
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": f'"{git_blob_oid(data)}"',
            "X-Repo-Commit": commit.oid,
            "Accept-Ranges": "bytes",
        }
        return Reply(200, headers, data)


class _Handler(BaseHTTPRequestHandler):
    """Adapts ``http.server`` to :meth:`FakeHub.handle` (HTTP/1.1, keep-alive)."""

    protocol_version = "HTTP/1.1"

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self, method: str) -> None:
        body = self._body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = self.server.hub.handle(method, self.path, headers, body)  # type: ignore[attr-defined]
        except Exception as err:  # a bug in the fake must show up as a 500, not a hung client
            reply = _error(500, f"fake hub error: {type(err).__name__}: {err}")
        data = reply.body
        status = reply.status
        extra: dict[str, str] = {}
        range_header = headers.get("range")
        if status == 200 and range_header and "ETag" in reply.headers:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
            if match and data:
                start = int(match.group(1) or 0)
                end = int(match.group(2)) if match.group(2) else len(data) - 1
                extra["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                data, status = data[start : end + 1], 206
        self.send_response(status)
        for key, value in {**reply.headers, **extra}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._serve("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server signature)
        """Silence the per-request log lines."""


def main() -> None:
    """Serve a fake hub until interrupted (for manual runs and benchmarks)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the only accepted token")
    parser.add_argument("--user", default=DEFAULT_USER, help="user the token belongs to")
    args = parser.parse_args()
    with FakeHub(token=args.token, user=args.user, port=args.port) as hub:
        print(f"HF_ENDPOINT={hub.endpoint}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

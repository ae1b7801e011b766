"""What the app's tabs share: folders, the model picker, the predictor cache, the training slot,
path allow-listing and the conversion of errors into ``gr.Error``.

Everything here is plain Python except :func:`gradio_errors` and :func:`finish`, so the
handlers can be tested without a browser.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr

from maskdepth.data import zipsafe
from maskdepth.errors import CheckpointError, InputError, MaskDepthError
from maskdepth.hub import is_repo_id
from maskdepth.runs import RunInfo, is_model_dir, list_runs

logger = logging.getLogger("maskdepth.app")

DEFAULT_CHOICE = "default (shipped)"
PREDICTOR_CACHE_SIZE = 4  # W-Nets are ~35 MB each in float32; a few stay warm
OUTPUT_TTL_S = 3600  # per-request output folders older than this are deleted
# Queue sizes: a flood of requests waits in a bounded queue instead of exhausting memory.
QUEUE_MAX_SIZE = 64
PREDICT_CONCURRENCY = 2  # two predictions at a time (CPU-bound; more would only thrash)
# Training and comparisons share one queue. The slot below allows one run at a time; the queue lets a
# few more requests in so a second user is told "busy" at once instead of waiting silently.
TRAIN_CONCURRENCY = 4

F = TypeVar("F", bound=Callable[..., Any])


# ---- errors -------------------------------------------------------------------------------


def _to_gr_error(err: Exception) -> gr.Error:
    """A user-facing gr.Error: our own messages as they are; anything else without internals."""
    if isinstance(err, MaskDepthError):
        return gr.Error(str(err), print_exception=False)
    # Unexpected: the traceback goes to the server log only, never to the browser.
    logger.exception("unexpected error in an app handler")
    return gr.Error(
        f"Something went wrong on the server ({type(err).__name__}). The details are in the server log; "
        "please try again or report the problem.",
        print_exception=False,
    )


def gradio_errors(fn: F) -> F:
    """Decorate a handler so MaskDepthError -> gr.Error(message) and other errors -> a generic gr.Error.

    Keeps generator handlers generators (Gradio streams them) and the signature intact
    (Gradio injects ``gr.Request`` / ``gr.OAuthToken`` by type hint and ``gr.Progress`` by default).
    """
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as err:  # noqa: BLE001 - every other error becomes a message, see _to_gr_error
                raise _to_gr_error(err) from err

        return gen_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as err:  # noqa: BLE001 - every other error becomes a message, see _to_gr_error
            raise _to_gr_error(err) from err

    return wrapper  # type: ignore[return-value]


# ---- image uploads ------------------------------------------------------------------------------


def image_upload(**kwargs: Any) -> gr.Image:
    """A ``gr.Image(type="filepath")`` whose upload reaches the handler undecoded.

    ``gr.Image`` opens every upload with PIL before the handler runs, so a non-image failed
    inside Gradio with its internal error text. Here the path (already checked by Gradio to be
    an upload in its cache) is passed on as it is, and ``maskdepth.imageio.open_image``, the one
    door for images (bomb guard, modes, EXIF), says what is wrong. An override on the instance
    rather than a subclass: Gradio writes a ``.pyi`` stub beside the module of every Component
    subclass.
    """
    image = gr.Image(type="filepath", image_mode=None, **kwargs)
    decode = image.preprocess

    def preprocess(payload: Any) -> Any:
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        return decode(payload)  # pasted base64 data: Gradio writes it to a file first

    image.preprocess = preprocess  # type: ignore[method-assign]
    return image


# ---- folders and model sources ---------------------------------------------------------------


@dataclass
class AppContext:
    """Folders and shared objects of one app instance (tests build several with tmp folders)."""

    checkpoints_dir: Path  # the shipped default model
    runs_dir: Path  # trained runs (and new comparisons) go here
    data_dir: Path  # extracted dataset uploads
    comparison_dir: Path  # the shipped comparison (results.json + gallery/)
    examples_dir: Path
    on_space: bool = False  # SPACE_ID is set: no local paths, OAuth tokens only
    # Limits on an uploaded dataset zip (files, extracted bytes); see maskdepth.data.zipsafe.
    upload_max_files: int = zipsafe.MAX_FILES
    upload_max_bytes: int = zipsafe.MAX_TOTAL_BYTES
    hub_models: list[str] = field(default_factory=list)  # Hub ids loaded in this app, for the picker
    predictors: PredictorCache = field(default_factory=lambda: PredictorCache(PREDICTOR_CACHE_SIZE))
    outputs: OutputDirs | None = None
    # Dropdowns refreshed after model-changing events (with the function giving their choices),
    # and the events after which they refresh.
    pickers: list[tuple[Any, Callable[[], list[Any]]]] = field(default_factory=list)
    model_events: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.checkpoints_dir, self.runs_dir = Path(self.checkpoints_dir), Path(self.runs_dir)
        self.data_dir, self.comparison_dir = Path(self.data_dir), Path(self.comparison_dir)
        self.examples_dir = Path(self.examples_dir)
        if self.outputs is None:
            self.outputs = OutputDirs()

    # The model picker ------------------------------------------------------------------------

    def runs(self) -> list[RunInfo]:
        return list_runs(self.runs_dir)

    def model_choices(self) -> list[tuple[str, str]]:
        """(label, value) pairs: the shipped model, every run (newest first), Hub ids loaded here."""
        default_label = (
            DEFAULT_CHOICE if is_model_dir(self.checkpoints_dir) else f"{DEFAULT_CHOICE} (missing)"
        )
        choices = [(default_label, DEFAULT_CHOICE)]
        choices += [(f"run: {r.label()}", r.name) for r in self.runs()]
        choices += [(f"Hub: {repo}", repo) for repo in self.hub_models]
        return choices

    def local_model_choices(self) -> list[tuple[str, str]]:
        """The shipped model and the runs (what can be pushed)."""
        return [c for c in self.model_choices() if c[1] not in self.hub_models]

    def run_choices(self) -> list[tuple[str, str]]:
        """Runs only (for "resume from" and "push")."""
        return [(r.label(), r.name) for r in self.runs()]

    def add_hub_model(self, repo_id: str) -> None:
        if repo_id not in self.hub_models:
            self.hub_models.append(repo_id)

    def resolve_source(self, value: str | None) -> str:
        """The picker's value -> what ``load_model`` takes (a folder path or a Hub repo id).

        Accepts the default entry, a run name (relative to the runs folder), a Hub id
        ``owner/name``, or (only when not on a Space) any local path. On a Space, paths must
        stay inside the runs folder or the checkpoints folder.
        """
        value = (value or "").strip() or DEFAULT_CHOICE
        if value == DEFAULT_CHOICE or value.startswith(f"{DEFAULT_CHOICE} "):
            if not is_model_dir(self.checkpoints_dir):
                raise CheckpointError(
                    f"the shipped default model is not installed yet ({self.checkpoints_dir} has no "
                    "config.json + model.safetensors): train a model in the Train tab, load one in the "
                    "Models tab, or pick a run"
                )
            return str(self.checkpoints_dir)
        run = self.runs_dir / value
        if ".." not in Path(value).parts and not Path(value).is_absolute() and is_model_dir(run):
            # A link inside the runs folder must not open a door out of it on a Space.
            if self.on_space and not run.resolve().is_relative_to(self.runs_dir.resolve()):
                raise InputError(
                    f"the run {value!r} links to a folder outside the runs folder; on this Space only runs "
                    "inside it can be used: pick a run from the list"
                )
            return str(run)
        if is_repo_id(value) and not Path(value).exists():
            return value  # a Hub repo id; load_model checks it further
        return str(self.local_path(value, what="model"))

    def local_path(self, value: str, *, what: str) -> Path:
        """A user-typed path, allow-listed on a Space (runs and checkpoints folders only)."""
        path = Path(value).expanduser()
        if self.on_space:
            if ".." in path.parts:
                raise InputError(f"the {what} path {value!r} contains '..': pick a run from the list instead")
            resolved = (path if path.is_absolute() else Path.cwd() / path).resolve()
            roots = [self.runs_dir.resolve(), self.checkpoints_dir.resolve()]
            if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
                raise InputError(
                    f"on this Space a {what} must be a run from the list, the shipped model or a Hub repo id "
                    "(owner/name); other paths are not allowed"
                )
            return resolved
        return path


class PredictorCache:
    """A small LRU of loaded Predictors keyed by source (and the weights' mtime, so retrained runs reload)."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[tuple[str, float], Any] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(source: str) -> tuple[str, float]:
        weights = Path(source) / "model.safetensors"
        return source, weights.stat().st_mtime if weights.is_file() else 0.0

    def get(self, source: str, token: str | bool | None = None) -> Any:
        """The Predictor for ``source`` (loaded on first use); ``token`` is only used to download."""
        from maskdepth.predict import Predictor

        key = self._key(source)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        # Load outside the lock: a slow Hub download must not block predictions on cached models.
        kwargs = {"token": token} if token is not None else {}
        predictor = Predictor.from_source(source, **kwargs)
        with self._lock:
            for old in [k for k in self._items if k[0] == source]:
                del self._items[old]  # an older version of the same run
            self._items[key] = predictor
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return predictor

    def __contains__(self, source: str) -> bool:
        return self._key(source) in self._items


class OutputDirs:
    """Per-request output folders under one temp root; folders older than ``ttl_s`` are pruned.

    Gradio copies returned files into its own cache, so ours only need to live a little while.
    They live in the system temp dir, which Gradio allows files to be served from.
    """

    def __init__(self, root: Path | None = None, ttl_s: float = OUTPUT_TTL_S):
        self.root = Path(root) if root else Path(tempfile.gettempdir()) / "maskdepth-app"
        self.ttl_s = ttl_s

    def new(self, prefix: str = "out") -> Path:
        self.prune()
        folder = self.root / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        folder.mkdir(parents=True)
        return folder

    def prune(self) -> None:
        if not self.root.is_dir():
            return
        cutoff = time.time() - self.ttl_s
        for child in self.root.iterdir():
            try:
                if child.is_dir() and child.stat().st_mtime < cutoff:
                    shutil.rmtree(child, ignore_errors=True)
            except OSError:
                continue  # another worker removed it first


# ---- one training at a time ----------------------------------------------------------------------


@dataclass
class _Job:
    what: str
    owner: str  # the Gradio session that started it (only it may stop it)
    started: float
    stop: threading.Event
    progress: float = 0.0


class TrainingSlot:
    """One training (or comparison) at a time for the whole process; others get a clear message."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._job: _Job | None = None

    def acquire(self, what: str, owner: str) -> threading.Event:
        """Take the slot and return the run's stop event, or raise InputError saying who is busy."""
        with self._lock:
            if self._job is not None:
                job = self._job
                started = time.strftime("%H:%M:%S", time.localtime(job.started))
                raise InputError(
                    f"a {job.what} is running (started at {started}, {job.progress:.0%} done); "
                    "try again when it finishes"
                )
            self._job = _Job(what=what, owner=owner, started=time.time(), stop=threading.Event())
            return self._job.stop

    def release(self, stop: threading.Event) -> None:
        with self._lock:
            if self._job is not None and self._job.stop is stop:
                self._job = None

    def set_progress(self, stop: threading.Event, progress: float) -> None:
        job = self._job
        if job is not None and job.stop is stop:
            job.progress = progress

    def request_stop(self, owner: str) -> str:
        """Ask the owner's run to stop at its next step; returns what happened, for the UI."""
        with self._lock:
            job = self._job
            if job is None:
                return "nothing is running"
            if job.owner != owner:
                return f"the running {job.what} was started by another session; only it can stop it"
            job.stop.set()
            return f"stopping the {job.what} at the next step; the best checkpoint so far is kept"

    @property
    def busy(self) -> bool:
        return self._job is not None


TRAINING = TrainingSlot()  # module-level on purpose: one per process, shared by every app and tab


def session_of(request: gr.Request | None) -> str:
    """A stable id of the browser tab / API client behind a request."""
    return getattr(request, "session_hash", None) or "local"


# ---- wiring shared by the tabs ---------------------------------------------------------------------


def picker_updates(ctx: AppContext) -> list[Any]:
    """New choices for every registered model picker (values are kept)."""
    return [gr.update(choices=choices()) for _, choices in ctx.pickers]


def register_picker(ctx: AppContext, dropdown: Any, choices: Callable[[], list[Any]] | None = None) -> Any:
    """Add a dropdown to the pickers refreshed after a training, a load, a refresh click and on page load.

    ``choices`` recomputes its choices (default: every model source, ``ctx.model_choices``).
    """
    ctx.pickers.append((dropdown, choices or ctx.model_choices))
    return dropdown


def finish(ctx: AppContext, demo: gr.Blocks) -> None:
    """Wire what spans tabs: pickers refresh after each model-changing event and on page load."""
    if not ctx.pickers:
        return

    outputs = [dropdown for dropdown, _ in ctx.pickers]

    def refresh() -> list[Any]:
        return picker_updates(ctx)

    for event in ctx.model_events:
        event.then(refresh, outputs=outputs, api_visibility="private", queue=False)
    demo.load(refresh, outputs=outputs, api_visibility="private", queue=False)


def env_path(name: str, default: str | os.PathLike) -> Path:
    """A folder from an environment variable, else ``default``."""
    return Path(os.environ.get(name) or default)


# ---- long jobs in a background thread ----------------------------------------------------------------

_END = object()


class ThreadJob:
    """Run ``target(emit)`` in a daemon thread and hand its events to a generator handler.

    Gradio streams a generator handler's yields to the browser; the training loop reports
    through a callback. This joins the two: the thread emits into a queue, :meth:`events`
    yields them (and ``None`` as a heartbeat every ``heartbeat_s``). If the consumer goes away
    (the browser tab closes, the API client cancels), Gradio closes the generator and ``stop``
    is set, so the run ends cleanly at its next step. ``on_exit`` runs in the thread when the
    target returns or fails, i.e. when the work has really ended (it releases the training slot).
    """

    def __init__(
        self,
        target: Callable[[Callable[[Any], None]], Any],
        *,
        stop: threading.Event,
        on_exit: Callable[[], None],
        name: str,
        heartbeat_s: float = 1.0,
    ):
        self._queue: queue.Queue[Any] = queue.Queue()
        self._stop, self._heartbeat_s = stop, heartbeat_s
        self.value: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.value = target(self._queue.put)
            except Exception as err:  # noqa: BLE001 - handed to the consumer, which turns it into a message
                self.error = err
            finally:
                on_exit()
                self._queue.put(_END)

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def events(self) -> Iterator[Any]:
        """The target's events in order, ``None`` on each quiet ``heartbeat_s``; ends when the target ends."""
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self._heartbeat_s)
                except queue.Empty:
                    yield None
                    continue
                if item is _END:
                    return
                yield item
        finally:
            if self._thread.is_alive():
                self._stop.set()  # the consumer left early: stop the run at its next step

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


# ---- app start-up ----------------------------------------------------------------------------------------


def make_context(
    checkpoints_dir: str | os.PathLike,
    runs_dir: str | os.PathLike | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    comparison_dir: str | os.PathLike = "comparisons/default",
    examples_dir: str | os.PathLike = "examples",
    on_space: bool | None = None,
) -> AppContext:
    """The app's folders: arguments first, then ``MASKDEPTH_RUNS`` / ``MASKDEPTH_DATA``, then defaults."""
    return AppContext(
        checkpoints_dir=Path(checkpoints_dir),
        runs_dir=Path(runs_dir) if runs_dir else env_path("MASKDEPTH_RUNS", "runs"),
        data_dir=Path(data_dir) if data_dir else env_path("MASKDEPTH_DATA", "data_cache/app"),
        comparison_dir=Path(comparison_dir),
        examples_dir=Path(examples_dir),
        on_space=bool(os.environ.get("SPACE_ID")) if on_space is None else on_space,
    )


def warm_up(ctx: AppContext) -> str:
    """Load the shipped model into the cache (the first prediction is then fast); returns a console line."""
    if not is_model_dir(ctx.checkpoints_dir):
        return (
            f"maskdepth: no shipped model in {ctx.checkpoints_dir} (config.json + model.safetensors) yet. "
            "The app starts anyway: train a model in the Train tab, or load one in the Models tab."
        )
    try:
        predictor = ctx.predictors.get(str(ctx.checkpoints_dir))
    except MaskDepthError as err:
        return f"maskdepth: cannot load the shipped model in {ctx.checkpoints_dir} ({err}); starting anyway."
    m = predictor.model
    return f"maskdepth: loaded the shipped model ({m.in_channels}-channel W-Net at {m.image_size}px)."

"""Long jobs (trainings, comparisons): one at a time per process, run in a thread, streamed to the browser.

:data:`TRAINING` is the slot; :class:`ThreadJob` joins the training loop's callback to a Gradio
generator handler.
"""

from __future__ import annotations

import dataclasses
import queue
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from maskdepth.config import TrainConfig, to_cli_args
from maskdepth.errors import InputError

# Training and comparisons share one queue. The slot below allows one run at a time; the queue lets a
# few more requests in so a second user is told "busy" at once instead of waiting silently.
TRAIN_CONCURRENCY = 4


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


# ---- what a run records -------------------------------------------------------------------------


def cli_command(
    cfg: TrainConfig, subcommand: str = "train", *, out: str | None = None, extra: Sequence[str] = ()
) -> str:
    """The ``python -m maskdepth train ...`` (or ``compare``) command reproducing ``cfg``, for model cards.

    ``out`` replaces the run folder (``--out``, always given); ``extra`` is appended as it is.
    """
    if out is not None:
        cfg = dataclasses.replace(cfg, out_dir=out)
    args = ["python", "-m", "maskdepth", subcommand, *to_cli_args(cfg, always=("out_dir",)), *extra]
    return shlex.join(args)

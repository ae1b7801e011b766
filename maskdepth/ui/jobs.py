"""Long jobs (trainings, comparisons): one at a time per process, run in a thread, streamed to the browser.

:data:`TRAINING` is the slot. A training is a :class:`Job`: a background thread with an id and an
owner that keeps running when the page that started it closes; any page of the same owner (a
reload, a second tab) finds it again with :meth:`TrainingSlot.latest` and watches it from where
it is (:meth:`Job.watch`). :class:`ThreadJob` (comparisons) instead ends its run with its page.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import shlex
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from maskdepth.errors import InputError
from maskdepth.training.config import TrainConfig
from maskdepth.training.settings import to_cli_args

# Training and comparisons share one queue. The slot below allows one run at a time; the queue lets a
# few more requests in so a second user is told "busy" at once instead of waiting silently.
TRAIN_CONCURRENCY = 4
KEPT_JOBS = 32  # finished jobs kept (the latest per owner) so a reload still shows their summary
# How much to lower a training thread's CPU priority (Linux nice, per thread). 0: measured with the
# default 2-minute run through gradio_client, nice 10 trained at 53 img/s (398 steps, IoU 0.934) and
# nice 0 at 69 img/s (515 steps, IoU 0.942) - the app's own streaming threads took the difference -
# while the CLI did 93 img/s; predictions already keep their speed (batch fetching no longer changes
# the process's thread count). Raise it if predictions must win over a running training.
TRAIN_NICE = 0


def lower_priority(nice: int = TRAIN_NICE) -> None:
    """Lower the calling thread's CPU priority by ``nice`` (Linux only; threads it starts inherit it)."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere PRIO_PROCESS with a thread id would name a process
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError:
        pass  # not permitted here: run at the normal priority


class Job:
    """A run in a background thread: its id, owner, stop event and state (``view``, e.g. a LiveRun).

    ``target(emit)`` runs in the thread; each ``emit(event)`` folds the event into ``view``
    (``view.update``) under the job's lock. Watchers (:meth:`watch`) are only readers: any number
    of them, coming and going, never stop the run; only :attr:`stop` does.
    """

    def __init__(self, what: str, owner: str, view: Any, stop: threading.Event | None = None) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.what, self.owner, self.view = what, owner, view
        self.stop = stop or threading.Event()
        self.started = time.time()
        self.value: Any = None
        self.error: BaseException | None = None
        self.ended = False
        self.version = 0  # bumped on every change; watchers render when it moved
        self.lock = threading.Condition()  # re-entrant
        self.zip_path: str | None = None  # the finished run as a zip, once someone asked for it
        self._thread: threading.Thread | None = None

    def change(self, fn: Callable[[Any], None]) -> None:
        """Apply ``fn(view)`` under the lock and wake the watchers."""
        with self.lock:
            fn(self.view)
            self.version += 1
            self.lock.notify_all()

    def emit(self, event: Any) -> None:
        """The run's callback: fold ``event`` into the view (``view.update``)."""
        self.change(lambda view: view.update(event))

    def start(self, target: Callable[[Callable[[Any], None]], Any], on_exit: Callable[[], None]) -> Job:
        """Run ``target(self.emit)`` in a daemon thread; ``on_exit`` runs in it when the target has ended."""

        def run() -> None:
            lower_priority()
            try:
                self.value = target(self.emit)
            except Exception as err:  # noqa: BLE001 - kept for the watchers, which turn it into a message
                self.error = err
            finally:
                try:
                    on_exit()
                finally:
                    with self.lock:
                        self.ended = True
                        self.version += 1
                        self.lock.notify_all()

        self._thread = threading.Thread(target=run, name=f"maskdepth-{self.what}-{self.id}", daemon=True)
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return not self.ended

    def watch(self, every_s: float = 0.5, heartbeat_s: float = 1.0) -> Iterator[bool]:
        """Yield ``ended`` whenever the job changed (at most every ``every_s``) or on a quiet
        ``heartbeat_s``; the last yield (True) is the job's final state. Leaving early is harmless."""
        seen = -1
        while True:
            with self.lock:
                if self.version == seen:
                    self.lock.wait(timeout=heartbeat_s)
                seen, ended = self.version, self.ended
            yield ended
            if ended:
                return
            time.sleep(every_s)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


@dataclass
class _Holder:
    what: str
    owner: str  # who started it (only they may stop it)
    started: float
    stop: threading.Event
    progress: float = 0.0
    job: Job | None = None


class TrainingSlot:
    """One training (or comparison) at a time for the whole process; others get a clear message.

    Also remembers each owner's latest :class:`Job` (running or finished, the last
    :data:`KEPT_JOBS` owners) so a page load can show it again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._job: _Holder | None = None
        self._latest: OrderedDict[str, Job] = OrderedDict()

    def acquire(self, what: str, owner: str) -> threading.Event:
        """Take the slot and return the run's stop event, or raise InputError saying who is busy."""
        with self._lock:
            if self._job is not None:
                job = self._job
                started = time.strftime("%H:%M:%S", time.localtime(job.started))
                progress = job.job.view.progress if job.job is not None else job.progress
                raise InputError(
                    f"a {job.what} is running (started at {started}, {progress:.0%} done); "
                    "try again when it finishes"
                )
            self._job = _Holder(what=what, owner=owner, started=time.time(), stop=threading.Event())
            return self._job.stop

    def attach(self, stop: threading.Event, job: Job) -> None:
        """Record ``job`` as the run holding the slot (under ``stop``) and as its owner's latest job."""
        with self._lock:
            if self._job is not None and self._job.stop is stop:
                self._job.job = job
            self._latest[job.owner] = job
            self._latest.move_to_end(job.owner)
            while len(self._latest) > KEPT_JOBS:
                self._latest.popitem(last=False)

    def latest(self, owner: str) -> Job | None:
        """The owner's running job, else their last finished one (None if they have none)."""
        with self._lock:
            return self._latest.get(owner)

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

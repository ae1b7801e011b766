"""Train in a child process of its own, its events streamed back through a queue.

    result = train_in_child(cfg, on_event, stop)  # same contract as loop.train

The app serves pages and renders the live view (charts, previews, progress) in its server process;
a training thread there shares the GIL with that work (bench/app_train.py measures what that
costs). A child process (``spawn``: a fresh interpreter, no copy of the server's threads) has an
interpreter of its own; the parent only folds the events into its view. The app's trainings run
here (MASKDEPTH_TRAIN_IN_CHILD=0: in a thread of the server, maskdepth.ui.train_run).
``stop`` is forwarded to the child, which stops at its next step as
:func:`~maskdepth.training.loop.train` does; the child is also told to stop when the parent stops
listening (an error in ``on_event``), and when the parent dies without a word (killed: SIGTERM,
SIGKILL), so no training outlives its server.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from maskdepth.errors import TrainingError
from maskdepth.training.config import TrainConfig
from maskdepth.training.events import Event, TrainResult

POLL_S = 0.2  # how often the parent checks ``stop`` and that the child is alive while it is quiet
JOIN_S = 60.0  # after the result: time for the child to exit; after an early exit: to stop and save


def _stop_when_orphaned(stop: Any, events: Any) -> None:
    """Watch the parent from a thread: once it is gone, stop at the next step and save, as Stop does,
    and exit without flushing ``events`` (nobody reads them; a full pipe would hold the exit);
    exit anyway if that has not happened within ``JOIN_S``."""
    parent = multiprocessing.parent_process()
    if parent is None:  # the body run in-process (tests)
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        events.cancel_join_thread()
        stop.set()
        time.sleep(JOIN_S)
        os._exit(1)

    threading.Thread(target=watch, name="maskdepth-parent-watch", daemon=True).start()


def _child(cfg: TrainConfig, events: Any, stop: Any, command: str | None, threads: int) -> None:
    """The child's body: train, putting ("event", e), then ("result", r) or ("error", err) on ``events``.
    ``threads``: the parent's torch thread count (a spawned interpreter starts at torch's default)."""
    from maskdepth.training.loop import train

    torch.set_num_threads(threads)  # cfg.threads, when set, still wins (the loop sets it)
    _stop_when_orphaned(stop, events)
    try:
        result = train(cfg, lambda event: events.put(("event", event)), stop, command=command)
        events.put(("result", result))
    except Exception as err:  # noqa: BLE001 - handed to the parent, which raises it there
        try:
            pickle.dumps(err)
        except Exception:  # noqa: BLE001 - an exception that cannot cross processes: keep its message
            err = TrainingError(f"{type(err).__name__}: {err}")
        events.put(("error", err))


def train_in_child(
    cfg: TrainConfig,
    on_event: Callable[[Event], None] | None = None,
    stop: threading.Event | None = None,
    *,
    command: str | None = None,
) -> TrainResult:
    """:func:`maskdepth.training.loop.train` in a spawned child process; ``on_event`` runs in the caller.

    Raises what the training raised (TrainingError if the child died without a word).
    """
    mp = multiprocessing.get_context("spawn")
    events = mp.Queue()
    child_stop = mp.Event()
    proc = mp.Process(
        target=_child,
        args=(cfg, events, child_stop, command, torch.get_num_threads()),
        name="maskdepth-train",
        daemon=True,
    )
    proc.start()
    stop = stop or threading.Event()
    finished = False
    try:
        while True:
            if stop.is_set():
                child_stop.set()
            try:
                kind, payload = events.get(timeout=POLL_S)
            except queue.Empty:
                if not proc.is_alive():
                    raise TrainingError(
                        f"the training process ended without a result (exit code {proc.exitcode}); "
                        "see the server log"
                    ) from None
                continue
            if kind == "event":
                if on_event is not None:
                    on_event(payload)
            elif kind == "result":
                finished = True
                return payload
            else:
                finished = True
                raise payload
    finally:
        if not finished:
            child_stop.set()  # the caller stopped listening: the child stops at its next step and saves
            deadline = time.monotonic() + JOIN_S
            while proc.is_alive() and time.monotonic() < deadline:
                try:  # keep reading: a child blocked on a full queue could not exit
                    events.get(timeout=POLL_S)
                except queue.Empty:
                    pass
        proc.join(JOIN_S)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
        events.close()

"""Training in a child process (maskdepth.training.isolated): events arrive, stop reaches it, errors cross."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
from support.models import tiny_config

from maskdepth.errors import MaskDepthError
from maskdepth.training.events import DoneEvent, StepEvent
from maskdepth.training.isolated import _child, train_in_child


def test_a_child_trains_streams_its_events_and_stops_when_asked(tmp_path: Path) -> None:
    events: list = []
    stop = threading.Event()

    def on_event(event) -> None:
        events.append(event)
        if isinstance(event, StepEvent) and event.step == 2:
            stop.set()

    result = train_in_child(tiny_config(tmp_path / "run", steps=1000, precision="fp32"), on_event, stop)
    steps = [e.step for e in events if isinstance(e, StepEvent)]
    assert result.reason == "stopped" and steps[:2] == [1, 2] and result.steps == steps[-1]
    assert isinstance(events[-1], DoneEvent) and events[-1].reason == "stopped"
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_the_childs_error_is_handed_to_the_parent_as_it_was(tmp_path: Path) -> None:
    """The child's body, run here: a failure goes on the queue as the exception itself (the parent raises it)."""
    events: queue.Queue = queue.Queue()
    _child(
        tiny_config(tmp_path / "run", dataset=str(tmp_path / "no-such-folder")),
        events,
        threading.Event(),
        None,
        torch.get_num_threads(),
    )
    kind, err = events.get_nowait()
    assert kind == "error" and isinstance(err, MaskDepthError) and "no-such-folder" in str(err)


PARENT = """
import multiprocessing, sys
sys.path[:0] = [sys.argv[2], sys.argv[3]]
from support.models import tiny_config
from maskdepth.training.events import StepEvent
from maskdepth.training.isolated import train_in_child

def on_event(event):
    if isinstance(event, StepEvent) and event.step == 2:
        print(multiprocessing.active_children()[0].pid, flush=True)

if __name__ == "__main__":
    train_in_child(tiny_config(sys.argv[1], steps=100_000, precision="fp32"), on_event)
"""


def test_a_killed_parent_leaves_no_training_behind(tmp_path: Path) -> None:
    """SIGKILL the process that started the training: the child stops, saves its checkpoint and exits."""
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    tests = Path(__file__).parent
    parent = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "run"), str(tests), str(tests.parent)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tests.parent,
    )
    try:
        child = int(parent.stdout.readline())
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 60
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = _running(child)
    if alive:
        os.kill(child, signal.SIGKILL)
    assert not alive, "the training child outlived its parent"
    assert (tmp_path / "run" / "model.safetensors").is_file()


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie waiting to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False

"""Training in a child process (maskdepth.training.isolated): events arrive, stop reaches it, errors cross."""

from __future__ import annotations

import queue
import threading
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

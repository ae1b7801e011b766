"""Hardening (issue 5), training faults: Stop mid-write, a crash, a NaN loss, a full or read-only
disk. Each ends in a message, and the last good checkpoint is intact and loads.
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from support.files import no_temp_files
from support.models import tiny_config
from support.ui import TRAINING, AppContext, gr_message, train_stream

import maskdepth
import maskdepth.hub.checkpoint as hub_mod
import maskdepth.training.evaluate as evaluate_mod
import maskdepth.training.loop as train_mod
import maskdepth.training.run_writer as run_writer_mod
from maskdepth import WNet, fileio
from maskdepth.errors import TrainingError
from maskdepth.training.loop import DoneEvent, EvalEvent

pytestmark = pytest.mark.usefixtures("training_slot_free")


def test_stop_during_a_checkpoint_write_keeps_a_complete_file(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = hub_mod.save_file
    writing = threading.Event()
    answers: list[str] = []

    def slow_save(state: dict, path: str, *args: Any, **kwargs: Any) -> None:
        writing.set()
        time.sleep(0.3)  # Stop is pressed, twice, while the weights are being written
        real_save(state, path, *args, **kwargs)

    def press_stop_twice() -> None:
        writing.wait(60)
        answers.append(TRAINING.request_stop("me"))
        answers.append(TRAINING.request_stop("me"))

    monkeypatch.setattr(hub_mod, "save_file", slow_save)
    monkeypatch.setenv("MASKDEPTH_TRAIN_IN_CHILD", "0")  # the patch lives in this process: train in a thread
    presser = threading.Thread(target=press_stop_twice)
    presser.start()
    *_, (_, status, *_) = train_stream(ctx, budget=1000, run_name="stopped")
    presser.join()
    assert len(answers) == 2 and all(a.startswith("stopping the training") for a in answers), answers
    assert "stopped after" in status
    assert TRAINING.request_stop("me") == "nothing is running"  # and once more after the end: harmless
    run = next(r.path for r in ctx.runs() if r.name.endswith("-stopped"))
    model = maskdepth.load_model(run)
    assert set(load_file(str(run / "model.safetensors"))) == set(model.state_dict())
    assert (run / "last.pt").is_file() and no_temp_files(run) == []


def test_crash_mid_epoch_keeps_the_best_checkpoint(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    real = train_mod.score_batch
    calls = {"n": 0}
    saved: list[bytes] = []
    real_save_weights = run_writer_mod.save_weights

    def crash_on_third_step(output: Any, batch: Any, cfg: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash in the training loop")
        return real(output, batch, cfg)

    def recording_save(model: WNet, folder: Path) -> None:
        real_save_weights(model, folder)
        saved.append((folder / "model.safetensors").read_bytes())

    monkeypatch.setattr(train_mod, "score_batch", crash_on_third_step)
    monkeypatch.setattr(run_writer_mod, "save_weights", recording_save)
    monkeypatch.setenv("MASKDEPTH_TRAIN_IN_CHILD", "0")  # the patches live in this process: train in a thread
    message = gr_message(lambda: train_stream(ctx, budget=10, run_name="crashed"))
    assert "went wrong" in message and "simulated" not in message  # details stay in the server log
    run = next(p for p in ctx.runs_dir.iterdir() if p.name.endswith("-crashed"))
    assert saved and (run / "model.safetensors").read_bytes() == saved[-1]
    assert maskdepth.load_model(run).base_width == 4
    assert no_temp_files(run) == []
    # Recovered: a new run resumes from the crashed run's best weights.
    monkeypatch.setattr(train_mod, "score_batch", real)
    *_, (_, status, *_) = train_stream(ctx, budget=1, resume=run.name, run_name="recovered")
    assert "finished after 1 steps" in status


def test_nan_loss_in_the_app_is_a_warning_not_a_crash(ctx: AppContext) -> None:
    with pytest.warns(UserWarning, match="lower the learning rate"):
        *_, (html, status, *_) = train_stream(ctx, lr=1e30, budget=6, run_name="nan")
    assert "NaN" in html and "the loss became" in status
    # The message says truly whether weights were kept: only finite ones ever are.
    run = next(p for p in ctx.runs_dir.iterdir() if p.name.endswith("-nan"))
    saved = (run / "model.safetensors").is_file()
    assert ("were kept" in status) == saved and ("no weights were saved" in status) == (not saved)
    if saved:
        assert all(torch.isfinite(p).all() for p in maskdepth.load_model(run).parameters())


@pytest.mark.parametrize(
    ("code", "fix"),
    [(errno.ENOSPC, "free some disk space"), (errno.EROFS, "make it writable")],
    ids=["disk-full", "read-only"],
)
def test_write_failure_mid_run_names_the_folder_and_keeps_the_best(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, fix: str
) -> None:
    real_save, real_eval = hub_mod.save_file, evaluate_mod.evaluate
    counts = {"save": 0, "eval": 0}

    def fails_after_first(state: dict, path: str, *args: Any, **kwargs: Any) -> None:
        counts["save"] += 1
        if counts["save"] >= 2:
            Path(path).write_bytes(b"half a safetensors file")
            raise OSError(code, os.strerror(code))
        real_save(state, path, *args, **kwargs)

    def always_better(*args: Any, **kwargs: Any) -> Any:
        result = real_eval(*args, **kwargs)
        counts["eval"] += 1
        result.loss = 1.0 / counts["eval"]  # every evaluation is a new best, so every one saves
        return result

    monkeypatch.setattr(hub_mod, "save_file", fails_after_first)
    monkeypatch.setattr(evaluate_mod, "evaluate", always_better)
    run = tmp_path / "run"
    events: list[Any] = []
    first: dict[str, bytes] = {}

    def on_event(event: Any) -> None:
        events.append(event)
        if isinstance(event, EvalEvent) and not first:
            first["weights"] = (run / "model.safetensors").read_bytes()

    with pytest.raises(TrainingError) as info:
        train_mod.train(tiny_config(run, steps=4, eval_every=1), on_event)
    message = str(info.value)
    assert str(run) in message and fix in message and os.strerror(code) in message
    assert (run / "model.safetensors").read_bytes() == first["weights"]  # the previous best, intact
    assert maskdepth.load_model(run).base_width == 4
    assert json.loads((run / "metrics.json").read_text())["best"]["step"] == 1
    assert no_temp_files(run) == []
    done = events[-1]
    assert (
        isinstance(done, DoneEvent)
        and done.reason == "error"
        and done.best is not None
        and done.best.step == 1
    )


def test_read_only_runs_folder_is_reported_in_the_app(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx.runs_dir.mkdir(parents=True)
    if os.geteuid() != 0:
        ctx.runs_dir.chmod(0o500)
    else:  # root writes anywhere: make the folder check meet what a read-only disk answers

        def read_only(folder: str | os.PathLike) -> Path:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(folder))

        monkeypatch.setattr(fileio, "check_writable", read_only)
        monkeypatch.setenv("MASKDEPTH_TRAIN_IN_CHILD", "0")  # the patch lives in this process
    try:
        message = gr_message(lambda: train_stream(ctx, run_name="locked"))
    finally:
        ctx.runs_dir.chmod(0o700)
    assert "cannot write to the output folder" in message and str(ctx.runs_dir) in message
    assert os.strerror(errno.EROFS if os.geteuid() == 0 else errno.EACCES) in message

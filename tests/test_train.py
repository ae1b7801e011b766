"""Tests for maskdepth.training.loop (the one training loop) and maskdepth.fileio (atomic writes).

Every run is a WNet(base_width=4) on SyntheticScenes(2, 2, 2) at 32x32 for a few steps:
16 samples -> 11 train / 5 test, batches of 4 (the last partial batch is dropped).
"""

from __future__ import annotations

import errno
import json
import math
import os
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from support.models import tiny_config, torch_threads
from torch.utils.data import Subset

import maskdepth
import maskdepth.training.loop as train_mod
import maskdepth.training.run_writer as run_writer_mod
from maskdepth import fileio
from maskdepth.data.transforms import split_dataset
from maskdepth.errors import TrainingError
from maskdepth.model.metrics import METRIC_NAMES
from maskdepth.training.evaluate import evaluate
from maskdepth.training.loop import (
    DoneEvent,
    EvalEvent,
    SamplesEvent,
    StepEvent,
    TrainConfig,
    build_dataset,
    train,
)

RUN_FILES = ("config.json", "model.safetensors", "train_config.json", "metrics.json", "last.pt")


class Recorder:
    """An on_event callback that keeps the events: ``.all`` in order, ``.of(kind)`` filtered."""

    def __init__(self) -> None:
        self.all: list = []

    def __call__(self, event) -> None:
        self.all.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.all if isinstance(e, kind)]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory):
    """One 3-step run shared by the read-only tests: (config, result, events)."""
    cfg = tiny_config(tmp_path_factory.mktemp("train") / "run")
    events = Recorder()
    result = train(cfg, events)
    return cfg, result, events


def finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


# ---- a normal run ------------------------------------------------------------------------


def test_events_come_in_order_with_finite_numbers(tiny_run) -> None:
    cfg, result, events = tiny_run
    assert isinstance(events.all[0], StepEvent) and isinstance(events.all[-1], DoneEvent)
    assert len(events.of(DoneEvent)) == 1

    steps = events.of(StepEvent)
    assert [e.step for e in steps] == [1, 2, 3]
    assert all(e.total_steps == 3 for e in steps)
    assert [e.progress for e in steps] == sorted(e.progress for e in steps) and steps[-1].progress == 1.0
    for e in steps:
        assert finite(e.loss, e.mask_loss, e.depth_loss, e.lr, e.images_per_s, e.elapsed_s)
        assert e.lr > 0 and e.loss == pytest.approx(e.mask_loss + e.depth_loss, rel=1e-5)

    evals = events.of(EvalEvent)
    assert [e.step for e in evals] == [2, 3]  # end of the first epoch (2 batches), then the end of the run
    for e in evals:
        assert finite(e.train_loss, e.test_loss, e.test_mask_loss, e.test_depth_loss, *e.metrics.values())
        assert set(e.metrics) == set(METRIC_NAMES)
    assert evals[0].is_best

    samples = events.of(SamplesEvent)
    assert samples and samples[-1].step == 3
    for sample in samples[-1].samples:
        assert set(sample) == {"fg_bg", "mask", "mask_pred", "depth", "depth_pred"}
        assert sample["fg_bg"].shape == (32, 32, 3) and sample["mask_pred"].shape == (32, 32)
        assert 0 <= sample["depth_pred"].min() and sample["depth_pred"].max() <= 1

    done = events.all[-1]
    assert (done.reason, done.steps, done.run_dir) == ("budget", 3, cfg.out_dir)
    assert done.best is not None and done.best.test_loss == min(e.test_loss for e in evals)
    assert (result.reason, result.steps) == ("budget", 3)
    assert result.best_test_loss == done.best.test_loss and result.best_metrics == done.best.metrics


def test_run_folder_holds_the_documented_files(tiny_run) -> None:
    cfg, result, _ = tiny_run
    run = Path(cfg.out_dir)
    assert result.run_dir == run
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    assert [p.name for p in run.iterdir() if p.name.endswith(".tmp")] == []  # no temp files left

    assert TrainConfig.from_dict(json.loads((run / "train_config.json").read_text())) == cfg
    assert json.loads((run / "config.json").read_text()) == {
        "in_channels": 6,
        "out_channels": 1,
        "base_width": 4,
        "image_size": 32,
    }
    metrics = json.loads((run / "metrics.json").read_text())
    assert [h["step"] for h in metrics["history"]] == [2, 3]
    assert metrics["best"]["test_loss"] == result.best_test_loss
    assert "16 samples" in metrics["dataset"]

    last = torch.load(run / "last.pt", map_location="cpu", weights_only=True)  # tensors and plain types only
    assert last["step"] == 3 and last["model_config"]["base_width"] == 4
    assert set(last["model"]) == set(load_file(str(run / "model.safetensors")))


def test_best_weights_load_and_reproduce_the_best_test_loss(tiny_run) -> None:
    cfg, result, _ = tiny_run
    model = maskdepth.load_model(cfg.out_dir)
    assert model.config == {"in_channels": 6, "out_channels": 1, "base_width": 4, "image_size": 32}
    saved = load_file(str(Path(cfg.out_dir) / "model.safetensors"))
    assert all(torch.equal(value, saved[key]) for key, value in model.state_dict().items())

    dataset = build_dataset(cfg.data_settings())
    _, test_split = split_dataset(dataset, cfg.test_fraction, seed=cfg.seed)
    eval_set = Subset(dataset, list(test_split.indices)[: cfg.eval_samples])
    scored = evaluate(model, eval_set, loss_cfg=cfg.loss_config(), batch_size=32)
    assert scored.loss == pytest.approx(result.best_test_loss, rel=1e-4)


def test_same_seed_gives_identical_weights(tiny_run, tmp_path: Path) -> None:
    cfg, _, events = tiny_run
    again = Recorder()
    train(tiny_config(tmp_path / "again"), again)
    first = load_file(str(Path(cfg.out_dir) / "model.safetensors"))
    second = load_file(str(tmp_path / "again" / "model.safetensors"))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert [e.loss for e in again.of(StepEvent)] == [e.loss for e in events.of(StepEvent)]

    other = Recorder()
    train(tiny_config(tmp_path / "other", seed=1), other)
    assert [e.loss for e in other.of(StepEvent)] != [e.loss for e in events.of(StepEvent)]


# ---- stopping ------------------------------------------------------------------------------


def test_stop_from_the_callback_ends_the_run_and_keeps_a_model(tmp_path: Path) -> None:
    stop = threading.Event()
    events = Recorder()

    def on_event(event) -> None:
        events(event)
        if isinstance(event, StepEvent) and event.step == 2:
            stop.set()

    result = train(tiny_config(tmp_path / "run", steps=10), on_event, stop)
    done = events.all[-1]
    assert isinstance(done, DoneEvent) and (done.reason, done.steps) == ("stopped", 2)
    assert (result.reason, result.steps) == ("stopped", 2)
    assert max(e.step for e in events.of(StepEvent)) == 2
    assert "stopped" in done.message
    model = maskdepth.load_model(tmp_path / "run")
    assert model.base_width == 4
    assert (tmp_path / "run" / "last.pt").is_file()


def test_nan_loss_ends_the_run_and_keeps_the_best_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = train_mod.score_batch
    calls = {"n": 0}

    def nan_after_first_step(output, batch, cfg):
        losses = real(output, batch, cfg)
        calls["n"] += 1
        return losses if calls["n"] == 1 else losses._replace(total=losses.total * float("nan"))

    monkeypatch.setattr(train_mod, "score_batch", nan_after_first_step)
    run = tmp_path / "run"
    saved: dict[str, bytes] = {}

    def on_event(event) -> None:
        events(event)
        if isinstance(event, EvalEvent):
            saved["weights"] = (run / "model.safetensors").read_bytes()

    events = Recorder()
    result = train(tiny_config(run, steps=5, eval_every=1), on_event)

    done = events.all[-1]
    assert isinstance(done, DoneEvent) and done.reason == "nan" and result.reason == "nan"
    assert done.steps == 1
    assert "nan" in done.message and "step 2" in done.message and "learning rate" in done.message
    assert (run / "model.safetensors").read_bytes() == saved["weights"]  # the step-1 best, untouched
    model = maskdepth.load_model(run)  # refuses NaN weights, so this also proves they are finite
    assert all(torch.isfinite(p).all() for p in model.parameters())
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["best"]["step"] == 1 and math.isfinite(metrics["best"]["test_loss"])


def test_diverged_weights_are_never_saved_as_best(tmp_path: Path) -> None:
    events = Recorder()
    result = train(tiny_config(tmp_path / "run", steps=5, eval_every=1, lr=1e30), events)
    assert result.reason == "nan"
    assert all(not e.is_best for e in events.of(EvalEvent) if not math.isfinite(e.test_loss))
    assert result.best_test_loss is None or math.isfinite(result.best_test_loss)


# ---- resume and parts ---------------------------------------------------------------------


def first_lr(cfg: TrainConfig) -> float:
    events = Recorder()
    train(cfg, events)
    return events.of(StepEvent)[0].lr


def test_resume_continues_or_restarts_the_learning_rate(tmp_path: Path) -> None:
    base = tmp_path / "base"
    train(tiny_config(base, scheduler="step", lr=1e-2))  # StepLR: x0.7 after the first epoch (2 steps)
    saved_lr = torch.load(base / "last.pt", weights_only=True)["lr"]
    assert saved_lr == pytest.approx(7e-3)

    def resumed(name: str, how: str) -> TrainConfig:
        return tiny_config(
            tmp_path / name, scheduler="step", lr=5e-3, steps=1, resume=str(base), resume_lr=how
        )

    assert first_lr(resumed("continue", "continue")) == pytest.approx(saved_lr)
    assert first_lr(resumed("restart", "restart")) == pytest.approx(5e-3)


def test_resume_with_onecycle(tiny_run, tmp_path: Path) -> None:
    cfg, _, _ = tiny_run
    saved_lr = torch.load(Path(cfg.out_dir) / "last.pt", weights_only=True)["lr"]
    resumed = {"resume": cfg.out_dir, "steps": 1, "lr": 4e-3}
    # "continue" anneals on from where the run stopped; "restart" starts OneCycle's warm-up again (peak / 25).
    assert first_lr(tiny_config(tmp_path / "c", resume_lr="continue", **resumed)) == pytest.approx(saved_lr)
    assert first_lr(tiny_config(tmp_path / "r", resume_lr="restart", **resumed)) == pytest.approx(4e-3 / 25)


def test_resume_rebuilds_the_saved_model(tiny_run, tmp_path: Path) -> None:
    cfg, _, _ = tiny_run
    train(tiny_config(tmp_path / "run", steps=1, base_width=8, resume=cfg.out_dir))
    assert (
        json.loads((tmp_path / "run" / "config.json").read_text())["base_width"] == 4
    )  # the checkpoint's, not 8


def test_parts_run_one_after_another(tmp_path: Path) -> None:
    events = Recorder()
    result = train(tiny_config(tmp_path / "run", parts=2, steps=4), events)
    assert result.steps == 4
    assert [e.part for e in events.of(StepEvent)] == [0, 0, 1, 1]
    assert {e.part for e in events.of(EvalEvent)} == {0, 1}


def test_more_parts_than_samples_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="parts"):
        train(tiny_config(tmp_path / "run", parts=50))


# ---- budgets -------------------------------------------------------------------------------


def test_epochs_budget_sets_total_steps(tmp_path: Path) -> None:
    # test_fraction 0.25 -> 12 train samples = exactly 3 batches of 4 per epoch; 1.5 epochs -> 5 steps.
    events = Recorder()
    result = train(tiny_config(tmp_path / "run", steps=None, epochs=1.5, test_fraction=0.25), events)
    steps = events.of(StepEvent)
    assert result.steps == 5 and all(e.total_steps == 5 for e in steps)
    assert [e.epoch for e in steps] == [0, 0, 0, 1, 1]
    assert [e.step for e in events.of(EvalEvent)] == [3, 5]  # once per epoch, and at the end


def test_one_epoch_is_one_pass_of_the_loader(tmp_path: Path) -> None:
    events = Recorder()
    result = train(tiny_config(tmp_path / "run", steps=None, epochs=1), events)
    assert result.steps == 2
    assert {e.epoch for e in events.of(StepEvent)} == {0}


def test_minutes_budget_ends_by_time(tmp_path: Path) -> None:
    events = Recorder()
    result = train(tiny_config(tmp_path / "run", steps=None, minutes=1e-5), events)
    assert result.reason == "budget" and result.steps >= 1
    assert all(e.total_steps is None for e in events.of(StepEvent))
    assert maskdepth.load_model(tmp_path / "run").base_width == 4


# ---- errors ----------------------------------------------------------------------------------


def test_output_folder_under_a_file_is_a_training_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "run"
    events = Recorder()
    with pytest.raises(TrainingError, match="output folder") as info:
        train(tiny_config(out), events)
    assert str(out) in str(info.value)
    assert events.all == []  # failed before any work


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_output_folder_is_a_training_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(TrainingError, match="locked"):
            train(tiny_config(locked / "run"))
    finally:
        locked.chmod(0o700)


def test_disk_full_while_saving_is_a_training_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(model, folder) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_writer_mod, "save_weights", disk_full)
    events = Recorder()
    with pytest.raises(TrainingError, match="disk space"):
        train(tiny_config(tmp_path / "run"), events)
    assert isinstance(events.all[-1], DoneEvent) and events.all[-1].reason == "error"


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        ({"steps": None}, ["budget", "epochs", "steps", "minutes"]),
        ({"optimizer": "sgd"}, ["sgd", "adam", "adamw"]),
        ({"scheduler": "cosine"}, ["cosine", "onecycle", "plateau", "step", "none"]),
        ({"mask_loss": "focal"}, ["focal", "'bce'", "'dice'", "'bce+dice'"]),
        ({"depth_loss": "huber"}, ["huber", "'ssim'", "'rmse'", "'ssim+bce'"]),
        ({"resume_lr": "later"}, ["continue", "restart"]),
        ({"steps": 0}, ["steps", "> 0"]),
        ({"minutes": -1.0}, ["minutes"]),
        ({"size": 16}, ["size", "32"]),
        ({"batch_size": 0}, ["batch_size"]),
    ],
)
def test_config_validation_names_the_valid_values(
    tmp_path: Path, overrides: dict, needles: list[str]
) -> None:
    with pytest.raises(TrainingError) as info:
        tiny_config(tmp_path / "run", **overrides)
    for needle in needles:
        assert needle in str(info.value)


def test_config_from_dict_ignores_unknown_keys(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "run", lr=3e-3)
    assert TrainConfig.from_dict({**cfg.to_dict(), "added_later": 1}) == cfg


# ---- fileio -----------------------------------------------------------------------------------


def test_atomic_write_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    fileio.write_text(path, "old")
    fileio.atomic_write(path, lambda p: p.write_text("new"))
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_failed_atomic_write_keeps_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    fileio.write_json(path, {"b": 1, "a": 2})
    before = path.read_text()
    assert before.index('"a"') < before.index('"b"')  # sorted keys: stable diffs

    def half_then_crash(tmp: Path) -> None:
        tmp.write_text('{"trunc')
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        fileio.atomic_write(path, half_then_crash)
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]

    with pytest.raises(OSError):
        fileio.atomic_write(tmp_path / "new.json", half_then_crash)
    assert not (tmp_path / "new.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_torch_save_writes_a_weights_only_file(tmp_path: Path) -> None:
    fileio.torch_save(tmp_path / "x.pt", {"w": torch.arange(3), "step": 4})
    loaded = torch.load(tmp_path / "x.pt", weights_only=True)
    assert loaded["step"] == 4 and torch.equal(loaded["w"], torch.arange(3))


def test_check_writable(tmp_path: Path) -> None:
    assert fileio.check_writable(tmp_path / "new" / "folder").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):
        fileio.check_writable(tmp_path / "file" / "sub")


# ---- precision (bf16 autocast) -------------------------------------------------------------------------


def test_a_bf16_run_trains_and_saves_float32_weights(tmp_path: Path) -> None:
    events = Recorder()
    result = train(tiny_config(tmp_path / "run", precision="bf16", steps=12), events)
    losses = [e.loss for e in events.of(StepEvent)]
    assert sum(losses[:3]) / 3 > sum(losses[-3:]) / 3  # it learns
    state = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert {t.dtype for t in state.values() if t.is_floating_point()} == {torch.float32}
    assert all(t.dtype == torch.float32 for t in maskdepth.load_model(tmp_path / "run").parameters())
    # The run records the precision it actually used.
    assert result.precision == "bf16" and events.of(DoneEvent)[-1].precision == "bf16"
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["precision"] == "bf16"
    assert json.loads((tmp_path / "run" / "train_config.json").read_text())["precision"] == "bf16"


def test_fp32_never_autocasts_and_is_what_auto_means_where_bf16_measures_slower(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maskdepth.training import precision

    def no_autocast(*args, **kwargs):
        raise AssertionError("fp32 training must not enter autocast")

    monkeypatch.setenv("MASKDEPTH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(precision.torch, "autocast", no_autocast)
    fp32 = train(tiny_config(tmp_path / "fp32", precision="fp32"))
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda *a, **k: 0.8)
    auto = train(tiny_config(tmp_path / "auto", precision="auto"))
    assert fp32.precision == auto.precision == "fp32"
    a, b = (load_file(str(tmp_path / name / "model.safetensors")) for name in ("fp32", "auto"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-identical: same seed, same float32 loop


def _fake_probe(monkeypatch: pytest.MonkeyPatch, speedup: float) -> list[int]:
    """Make the probe report ``speedup``; returns the list its calls are counted in."""
    from maskdepth.training import precision

    calls: list[int] = []
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda *a, **k: calls.append(1) or speedup)
    return calls


def test_auto_precision_follows_the_measured_speed_and_reuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maskdepth.training import precision

    monkeypatch.setenv("MASKDEPTH_CACHE_DIR", str(tmp_path / "cache"))
    cpu = torch.device("cpu")
    model = maskdepth.WNet(in_channels=6, base_width=4, image_size=32)
    calls = _fake_probe(monkeypatch, 1.30)
    first = precision.choose("auto", model, cpu, batch_size=4, size=32)
    again = precision.choose("auto", model, cpu, batch_size=4, size=32)
    assert (first.dtype, first.how, again.dtype, again.how) == ("bf16", "measured", "bf16", "cached")
    assert len(calls) == 1 and again.bf16_speedup == pytest.approx(1.30)
    # Another width is another entry; a bf16 within the margin of fp32 is not worth it.
    calls = _fake_probe(monkeypatch, 1.02)
    wider = precision.choose(
        "auto", maskdepth.WNet(in_channels=6, base_width=8, image_size=32), cpu, batch_size=4, size=32
    )
    assert (wider.dtype, wider.how, len(calls)) == ("fp32", "measured", 1)
    # Forced values never probe; a CUDA-less device that is not the CPU keeps the device rule.
    calls = _fake_probe(monkeypatch, 9.0)
    for forced in ("fp32", "bf16"):
        assert precision.choose(forced, model, cpu, batch_size=4, size=32) == precision.Choice(
            forced, "forced"
        )
    assert precision.choose("auto", model, torch.device("meta"), batch_size=4, size=32).how == "device"
    assert calls == []
    with pytest.raises(TrainingError, match="precision"):
        TrainConfig(steps=1, precision="fp16")


def test_the_probe_times_both_dtypes_interleaved_and_leaves_the_model_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from maskdepth.training import precision

    model = maskdepth.WNet(in_channels=6, base_width=4, image_size=32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    order: list[str] = []
    real_autocast = precision.autocast

    def recording_autocast(dtype, device):
        order.append(dtype)
        return real_autocast(dtype, device)

    # A fake clock: every step of a dtype takes its fixed time, so the ratio is known exactly.
    clock = [0.0]
    cost = {"fp32": 1.0, "bf16": 0.5}

    def timer() -> float:
        if order and timer.last != len(order):  # a step ran since the last reading
            clock[0] += cost[order[-1]]
            timer.last = len(order)
        return clock[0]

    timer.last = 0
    monkeypatch.setattr(precision, "autocast", recording_autocast)
    rng = torch.get_rng_state()
    ratio = precision.measure_bf16_speedup(model, 2, 32, seconds=3.0, timer=timer)
    assert ratio == pytest.approx(2.0)
    assert order[:6] == ["fp32", "bf16", "fp32", "bf16", "bf16", "fp32"]  # warm-up, then alternating
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_a_run_records_how_its_precision_was_chosen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASKDEPTH_CACHE_DIR", str(tmp_path / "cache"))
    _fake_probe(monkeypatch, 1.25)
    events = Recorder()
    train(tiny_config(tmp_path / "run", precision="auto"), events)
    choice = json.loads((tmp_path / "run" / "metrics.json").read_text())["precision_choice"]
    assert choice == {"dtype": "bf16", "how": "measured", "bf16_speedup": 1.25}
    step = events.of(StepEvent)[-1]
    assert (step.precision, step.bf16_speedup) == ("bf16", 1.25)


# ---- fetching batches -----------------------------------------------------------------------------------


def test_batches_are_fetched_on_one_core_without_touching_other_threads() -> None:
    from maskdepth.data import fetch

    if fetch._omp_set_num_threads() is None:
        pytest.skip("this torch build has no OpenMP runtime to limit per thread")
    seen: list[tuple[str, int]] = []
    others: list[int] = []

    def start_torch_work() -> None:  # e.g. a prediction in the app, started while a batch is fetched
        others.append(torch.get_num_threads())

    class Loader:
        def __iter__(self):
            for i in range(3):
                seen.append((threading.current_thread().name, torch.get_num_threads()))
                fresh = threading.Thread(target=start_torch_work)
                fresh.start()
                fresh.join()
                yield torch.full((2,), float(i))

    with torch_threads(2):
        batches = [b[0].item() for b in fetch.one_thread_batches(Loader())]
        assert torch.get_num_threads() == 2
    assert batches == [0.0, 1.0, 2.0]
    assert all(threads == 1 and name != threading.current_thread().name for name, threads in seen)
    assert others == [2, 2, 2]  # torch.set_num_threads(1) around the fetch gave them 1 for good

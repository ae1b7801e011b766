"""A training's life as a server-side job, through gradio_client: start, re-attach, stop from another
client, finish, crash; and on a Space, visitors who see and stop only their own run.

The app is launched in this process with a tiny shipped model; runs are a few steps of a width-4
W-Net on 16 synthetic 32 px samples (tests/tiny.py), so each test takes seconds.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from support import models as tiny
from support.net import build_app, free_port, training_step

import maskdepth
from maskdepth.training import loop as train_mod
from maskdepth.ui import train_run
from maskdepth.ui.jobs import TRAINING

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with tiny.torch_threads(1):
        yield


@pytest.fixture(autouse=True)
def _slot_is_free() -> Iterator[None]:
    """Every test ends with no training running (its jobs stopped or finished)."""
    yield
    TRAINING.request_stop("local")
    assert wait_for(lambda: not TRAINING.busy, 30), "a test left a training running"


def wait_for(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def launch(tmp_path: Path, *, on_space: bool) -> Any:
    torch.manual_seed(0)
    maskdepth.WNet(base_width=4, image_size=32).save_pretrained(tmp_path / "checkpoints")
    demo = build_app(
        tmp_path / "checkpoints", tmp_path, on_space=on_space, examples_dir=tmp_path / "no-examples"
    )
    demo.launch(prevent_thread_lock=True, server_port=free_port(), quiet=True)
    return demo


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    demo = launch(tmp_path_factory.mktemp("jobs"), on_space=False)
    try:
        yield demo.local_url
    finally:
        demo.close()


def client(url: str) -> Any:
    from gradio_client import Client

    return Client(url, verbose=False)


def train_args(**overrides: Any) -> dict[str, Any]:
    controls = tiny.tiny_train_controls(
        **{"budget": 100000, "eval_every": 2, "eval_samples": 4, "sample_every": 0, **overrides}
    )
    return {"dataset_kind": "synthetic", "zip_file": None, "folder": "", **controls}


def final(job: Any, timeout: float = 60) -> tuple[Any, ...]:
    """A stream's last outputs, once it has ended."""
    assert wait_for(job.done, timeout), "the stream did not end"
    return job.outputs()[-1]


def test_a_run_outlives_its_client_and_stops_from_another(server: str) -> None:
    starter = client(server)
    job = starter.submit(**train_args(run_name="outlives"), api_name="/train")
    assert wait_for(lambda: training_step(job) >= 2, 60), "the training did not start"
    # The loop runs in a process of its own, not in a thread of the server (maskdepth.training.isolated).
    assert "maskdepth-train" in {p.name for p in multiprocessing.active_children()}
    job.cancel()  # the page that started it closes
    time.sleep(1.0)
    assert TRAINING.busy, "leaving the page must not stop the run"
    # Another client (a reload, a second tab) re-attaches: the same run, further on.
    watcher = client(server).submit(api_name="/watch_training")
    seen = 0
    assert wait_for(lambda: training_step(watcher) > seen, 60)
    first = training_step(watcher)
    assert wait_for(lambda: training_step(watcher) > first, 60), "the run must keep training"
    # Stop from a third client; the watcher's stream ends with the stopped run's summary.
    client(server).predict(api_name="/stop_training")
    html, status, curves, samples, download = final(watcher)
    assert "stopped" in html and "stopped after" in status and "use it in Predict" in status
    assert wait_for(lambda: not TRAINING.busy, 20)
    run = Path(re.search(r"run folder: `([^`]+)`", status).group(1))
    assert maskdepth.load_model(run).base_width == 4  # the best checkpoint so far, loadable
    assert Path(download).name == f"{run.name}.zip"


def test_a_finished_run_stays_visible_on_the_next_page_load(server: str) -> None:
    html, status, *_ = client(server).predict(**train_args(budget=3, run_name="finished"), api_name="/train")
    assert "finished after 3 steps" in status
    again = client(server).predict(api_name="/watch_training")  # a later page load
    assert again[0] == html and again[1] == status and "IoU" in again[1]


def test_a_crash_is_reported_to_the_starter_and_to_later_pages(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real = train_mod.score_batch

    def crash_on_third_step(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash in the training loop")
        return real(*args, **kwargs)

    monkeypatch.setattr(train_mod, "score_batch", crash_on_third_step)
    monkeypatch.setenv("MASKDEPTH_TRAIN_IN_CHILD", "0")  # the patch lives in this process: train in a thread
    with pytest.raises(Exception, match="went wrong") as shown:
        client(server).predict(**train_args(budget=10, run_name="crashed"), api_name="/train")
    assert "simulated" not in str(shown.value)  # the details stay in the server log
    assert wait_for(lambda: not TRAINING.busy, 20)
    html, status, *_ = client(server).predict(api_name="/watch_training")
    assert "failed" in html and "went wrong" in status


def test_on_a_space_visitors_see_and_stop_only_their_own_run(tmp_path: Path) -> None:
    demo = launch(tmp_path, on_space=True)
    try:
        alice, bob = client(demo.local_url), client(demo.local_url)
        job = alice.submit(**train_args(run_name="alices"), api_name="/train")
        assert wait_for(lambda: training_step(job) >= 1, 60)
        assert "step" not in str(bob.predict(api_name="/watch_training")[0])  # bob has no run to watch
        bob.predict(api_name="/stop_training")  # not his: the run goes on
        before = training_step(job)
        assert wait_for(lambda: training_step(job) > before, 60)
        alice.predict(api_name="/stop_training")
        *_, status, _, _, download = final(job)
        assert "stopped after" in status and download
        run = Path(re.search(r"run folder: `([^`]+)`", status).group(1))
        assert run.parent.name.startswith("visitor-") and run.parent.parent == tmp_path / "runs"
    finally:
        demo.close()


def test_watching_never_stops_the_run(tmp_path: Path) -> None:
    """The watcher is only a reader: many come and go (closed generators) while the run trains on."""
    from maskdepth.ui import context, train_tab

    ctx = context.make_context(
        tmp_path / "none", tmp_path / "runs", data_dir=tmp_path / "data", on_space=False
    )
    stream = train_tab.train_stream(ctx, "me", **train_args(run_name="w", folder=None))
    next(stream)
    stream.close()  # the starter left
    for _ in range(3):
        watcher = train_run.reattach(ctx, "me")
        next(watcher)
        watcher.close()
    job = TRAINING.latest("me")
    assert job is not None and job.running and not job.stop.is_set()
    assert "stopping" in TRAINING.request_stop("me")
    job.join(30)
    assert job.view.done is not None and job.view.done.reason == "stopped"


def test_fine_tune_the_shipped_model_and_the_space_cap(tmp_path: Path) -> None:
    from maskdepth.ui import context, models_tab, train_tab

    torch.manual_seed(0)
    maskdepth.WNet(base_width=4, image_size=32).save_pretrained(tmp_path / "checkpoints")
    ctx = context.make_context(tmp_path / "checkpoints", tmp_path / "runs", on_space=False)
    assert train_tab.FINE_TUNE in train_tab.resume_choices(ctx)
    controls = tiny.tiny_train_controls(resume=train_tab.FINE_TUNE, resume_lr="continue")
    cfg = train_tab.build_config(ctx, dataset="synthetic", **controls)
    assert cfg.resume == str(tmp_path / "checkpoints") and cfg.resume_lr == "restart"
    assert cfg.minutes is None and cfg.steps == 3
    ctx.on_space = True  # a Space caps every budget in time
    capped = train_tab.build_config(
        ctx, dataset="synthetic", **tiny.tiny_train_controls(budget_kind="minutes", budget=60)
    )
    assert capped.minutes == train_tab.SPACE_MAX_MINUTES
    assert "runs are temporary" in train_tab.defaults_text(
        ctx
    ) and "your own runs" in train_tab.defaults_text(ctx)
    with zipfile.ZipFile(models_tab.download(ctx, context.DEFAULT_CHOICE)) as zf:
        assert "checkpoints/model.safetensors" in zf.namelist()


def test_curves_name_every_line_and_go_log_when_losses_span_decades() -> None:
    from maskdepth.ui.live import LOSS_COLORS, LR_SERIES, curves_plot

    flat = json.loads(curves_plot({"train mask": [(1, 0.5), (2, 0.4)]}, [(1, 1e-3)]).plot)
    steep = json.loads(
        curves_plot({"train mask": [(1, 5.0), (2, 0.01)], "test mask": [(2, float("nan"))]}, []).plot
    )
    train, test, lr = steep["layer"]
    assert train["encoding"]["color"]["scale"]["domain"] == [*LOSS_COLORS, LR_SERIES]  # all in the legend
    assert (
        train["encoding"]["y"]["scale"]["type"] == "log"
        and train["encoding"]["y"]["axis"]["title"] == "loss (log scale)"
    )
    assert test["encoding"]["y"]["scale"] == train["encoding"]["y"]["scale"]  # one axis for train and test
    assert (
        lr["encoding"]["y"]["axis"]["orient"] == "right" and steep["resolve"]["scale"]["y"] == "independent"
    )
    assert all(r.get("loss") == r.get("loss") for r in steep["data"]["values"])  # NaN left out (not JSON)
    lo, hi = flat["layer"][0]["encoding"]["y"]["scale"]["domain"]
    assert (
        flat["layer"][0]["encoding"]["y"]["scale"]["type"] == "linear" and 0.35 < lo < 0.4 and 0.5 < hi < 0.55
    )

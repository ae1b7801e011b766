"""Tests for maskdepth.training.runs: finding run folders (the app's model picker) and writing model cards."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.models import tiny_model

from maskdepth import WNet
from maskdepth.hub.card import card_info
from maskdepth.hub.transfer import save_model
from maskdepth.training.runs import list_runs, write_run_card


@pytest.fixture(scope="module")
def model() -> WNet:
    return tiny_model()


def make_run(model: WNet, folder: Path, mtime: float, iou: float | None = None) -> Path:
    """A loadable model folder (config.json + model.safetensors) with the given weights mtime."""
    save_model(model, folder)
    if iou is not None:
        best = {"step": 3, "test_loss": 0.5, "metrics": {"mask_iou": iou, "depth_delta1": 0.75}}
        (folder / "metrics.json").write_text(json.dumps({"best": best, "history": [best], "dataset": "tiny"}))
    (folder / "train_config.json").write_text(json.dumps({"steps": 3, "base_width": 4}))
    os.utime(folder / "model.safetensors", (mtime, mtime))
    return folder


@pytest.fixture
def runs_dir(tmp_path: Path, model: WNet) -> Path:
    root = tmp_path / "runs"
    make_run(model, root / "old", 1_000_000, iou=0.25)
    make_run(model, root / "new", 3_000_000, iou=0.5)
    make_run(model, root / "compare" / "bce-bce", 2_000_000)
    (root / "incomplete").mkdir()
    (root / "incomplete" / "config.json").write_text("{}")  # a run still starting: no weights yet
    (root / "link").symlink_to(root / "new", target_is_directory=True)
    make_run(model, root / ".hidden", 4_000_000)
    make_run(model, root / "a" / "b" / "too-deep", 5_000_000)
    return root


def test_list_runs_finds_complete_runs_newest_first(runs_dir: Path) -> None:
    runs = list_runs(runs_dir)
    assert [r.name for r in runs] == ["new", "compare/bce-bce", "old"]
    assert runs[0].path == runs_dir / "new"
    assert runs[0].metrics == {"mask_iou": 0.5, "depth_delta1": 0.75}
    assert runs[0].train_config == {"steps": 3, "base_width": 4}
    assert runs[0].label() == "new (IoU 0.500, δ<1.25 0.750)"
    assert runs[1].metrics == {} and runs[1].label() == "compare/bce-bce"


def test_list_runs_depth_and_missing_folder(runs_dir: Path, tmp_path: Path) -> None:
    assert "a/b/too-deep" in [r.name for r in list_runs(runs_dir, max_depth=3)]
    assert list_runs(tmp_path / "nowhere") == []


def test_unreadable_metrics_do_not_hide_a_run(runs_dir: Path) -> None:
    (runs_dir / "new" / "metrics.json").write_text('{"best": ')  # being written right now
    runs = {r.name: r for r in list_runs(runs_dir)}
    assert runs["new"].metrics == {}


def test_write_run_card_writes_a_model_card(runs_dir: Path) -> None:
    run = runs_dir / "new"
    path = write_run_card(run, command="python -m maskdepth train --steps 3")
    assert path == run / "README.md"
    card = path.read_text(encoding="utf-8")
    assert card.startswith("---\n") and "library_name: maskdepth" in card
    assert "python -m maskdepth train --steps 3" in card
    assert "0.5" in card  # the IoU
    assert json.loads((run / "card.json").read_text()) == {"command": "python -m maskdepth train --steps 3"}

    # Rewritten later without a command (e.g. after evaluate --update-card): the command is kept.
    assert card_info(run)["command"] == "python -m maskdepth train --steps 3"
    write_run_card(run)
    assert "python -m maskdepth train --steps 3" in (run / "README.md").read_text(encoding="utf-8")


def test_the_picker_and_the_card_read_the_same_metrics(tmp_path: Path, model: WNet) -> None:
    run = make_run(model, tmp_path / "flat", 1_000_000)
    # An older metrics.json layout (metrics directly under "best") is read the same by both.
    (run / "metrics.json").write_text(json.dumps({"best": {"mask_iou": 0.4}, "dataset": "tiny"}))
    assert list_runs(tmp_path)[0].metrics == {"mask_iou": 0.4} == card_info(run)["metrics"]
    assert card_info(run)["dataset"] == "tiny" and card_info(run)["dataset_split"] == "test"
    evaluation = {
        "metrics": {"mask_iou": 0.6},
        "split": "5 images of the train split of tiny",
        "command": "c",
    }
    (run / "evaluation.json").write_text(json.dumps(evaluation))
    info = card_info(run)
    assert info["metrics"] == {"mask_iou": 0.6} and info["dataset_split"] == "train"
    assert "printed by `c`" in info["eval_split"] and info["eval_dataset"] == "tiny"
    card = write_run_card(run).read_text(encoding="utf-8")
    assert "value: 0.6" in card  # in the model-index
    (run / "metrics.json").write_text(json.dumps({"best": {"mask_iou": 0.4}, "dataset": "the training mix"}))
    card = write_run_card(run).read_text(encoding="utf-8")
    # The model-index files the evaluated metrics under the evaluated data; the training data
    # stays in the card's training section.
    assert "name: tiny" in card and "Dataset: the training mix" in card


def test_card_json_extras_reach_the_card(runs_dir: Path) -> None:
    run = runs_dir / "new"
    extras = {
        "description": "hand-written",
        "base_model": "bob/wnet",
        "space_url": "https://hf.co/spaces/a/b",
    }
    (run / "card.json").write_text(json.dumps(extras))
    card = write_run_card(run).read_text(encoding="utf-8")
    assert "hand-written" in card and "base_model: bob/wnet" in card and "https://hf.co/spaces/a/b" in card

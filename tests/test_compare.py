"""Tests for maskdepth.compare: tiny variants trained on the same data, results.json, verdict, gallery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny import tiny_config, torch_threads

from maskdepth.compare import VARIANTS, load_comparison, run_comparison, verdict
from maskdepth.errors import TrainingError
from maskdepth.metrics import METRIC_NAMES
from maskdepth.train import DoneEvent, StepEvent

CHOSEN = ["bce|bce", "bce|ssim", "resume continue-lr", "resume restart-lr"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("compare") / "cmp"
    events: list[tuple[str, object]] = []
    base = tiny_config(folder, steps=2)
    result = run_comparison(
        base, CHOSEN, folder, on_event=lambda name, e: events.append((name, e)), command="test"
    )
    return base, result, events


def test_results_json_has_metrics_for_every_variant(comparison) -> None:
    _, result, _ = comparison
    data = json.loads((result.folder / "results.json").read_text())
    assert list(data["variants"]) == CHOSEN
    for name, entry in data["variants"].items():
        assert set(entry["metrics"]) == set(METRIC_NAMES), name
        assert entry["description"] == VARIANTS[name].description
        assert (result.folder / entry["run_dir"] / "model.safetensors").is_file()
    assert data["variants"]["bce|ssim"]["losses"] == {"mask": "bce", "depth": "ssim"}
    assert data["command"] == "test" and data["base_config"]["steps"] == 2
    assert result.table()["bce|bce"]["time_s"] >= 0


def test_verdict_names_a_winner(comparison) -> None:
    _, result, _ = comparison
    assert result.verdict.startswith("Winner overall: ")
    winner = result.verdict.removeprefix("Winner overall: ").split(" — ")[0]
    assert winner in CHOSEN
    for label in METRIC_NAMES.values():
        assert label in result.verdict


def test_gallery_pngs_exist(comparison) -> None:
    _, result, _ = comparison
    assert result.gallery
    for item in result.gallery:
        assert (result.folder / item["path"]).is_file(), item
    captions = " ".join(item["caption"] for item in result.gallery)
    for name in CHOSEN:
        assert f"{name} mask" in captions and f"{name} depth" in captions


def test_resume_pair_shares_one_half_trained_run(comparison) -> None:
    base, result, events = comparison
    half = result.folder / "_half"
    assert (half / "last.pt").is_file()
    for name, how in (("resume continue-lr", "continue"), ("resume restart-lr", "restart")):
        cfg = json.loads((result.folder / result.variants[name]["run_dir"] / "train_config.json").read_text())
        assert (cfg["resume"], cfg["resume_lr"], cfg["steps"]) == (str(half), how, 1)  # half of 2 steps each
    # The half run trained once, reported under the first resume variant.
    done = [(name, e) for name, e in events if isinstance(e, DoneEvent)]
    assert [name for name, _ in done] == [
        "bce|bce",
        "bce|ssim",
        "resume continue-lr",
        "resume continue-lr",
        "resume restart-lr",
    ]
    steps = [name for name, e in events if isinstance(e, StepEvent)]
    assert steps.count("bce|bce") == 2 and steps.count("resume continue-lr") == 2  # half + resumed half


def test_load_comparison_reads_it_back(comparison, tmp_path: Path) -> None:
    _, result, _ = comparison
    loaded = load_comparison(result.folder)
    assert loaded is not None
    assert loaded.variants == json.loads(json.dumps(result.variants))
    assert loaded.verdict == result.verdict and loaded.gallery == result.gallery
    assert load_comparison(tmp_path) is None


def test_unknown_variant_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(TrainingError) as info:
        run_comparison(tiny_config(tmp_path, steps=1), ["bce|bce", "magic"], tmp_path / "cmp")
    message = str(info.value)
    assert "magic" in message
    assert all(name in message for name in VARIANTS)
    assert not (tmp_path / "cmp" / "bce-bce").exists()  # checked before training anything


def test_verdict_ranks_by_direction_of_each_metric() -> None:
    good = {
        "mask_dice": 0.9,
        "mask_iou": 0.8,
        "depth_rmse": 0.05,
        "depth_absrel": 0.1,
        "depth_delta1": 0.9,
        "depth_ssim": 0.8,
    }
    bad = {
        "mask_dice": 0.5,
        "mask_iou": 0.4,
        "depth_rmse": 0.2,
        "depth_absrel": 0.4,
        "depth_delta1": 0.5,
        "depth_ssim": 0.3,
    }
    text = verdict({"b": {"description": "B", "metrics": bad}, "a": {"description": "A", "metrics": good}})
    assert text.startswith("Winner overall: a — A")
    assert "Depth RMSE: a (0.0500)" in text  # lower is better for RMSE
    assert verdict({}) == "no variants were trained"

"""Tests for maskdepth.compare.comparison: tiny variants trained with several seeds, results.json, gallery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.models import tiny_config

from maskdepth.compare.comparison import VARIANTS, load_comparison, run_comparison, shipped_command
from maskdepth.errors import TrainingError
from maskdepth.model.metrics import METRIC_NAMES
from maskdepth.training.loop import DoneEvent, StepEvent

CHOSEN = ["bce|bce", "bce|ssim", "resume continue-lr", "resume restart-lr"]
SEEDS = 2


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("compare") / "cmp"
    events: list[tuple[object, object]] = []
    # 4 rooms x 2 objects x 1 position x 2 flips: a test split with samples from several rooms.
    base = tiny_config(folder, steps=2, backgrounds=4, positions=1)
    result = run_comparison(
        base, CHOSEN, folder, on_event=lambda key, e: events.append((key, e)), command="test", seeds=SEEDS
    )
    return base, result, events


def test_results_json_keeps_every_seed_and_a_summary_per_metric(comparison) -> None:
    _, result, _ = comparison
    data = json.loads((result.folder / "results.json").read_text())
    assert data["variant_order"] == CHOSEN and data["seeds"] == [0, 1]
    assert "95%" in data["interval"] and "t interval" in data["interval"].replace("-", " ")
    for name, entry in data["variants"].items():
        assert [s["seed"] for s in entry["seeds"]] == [0, 1], name
        for seed in entry["seeds"]:
            assert set(seed["metrics"]) == set(METRIC_NAMES)  # the six, edge F1 and rank correlation
            assert (result.folder / seed["run_dir"] / "model.safetensors").is_file()
            assert seed["steps"] == 2 and seed["curve"]["step"] and seed["evals"]
        for key in METRIC_NAMES:
            stat = entry["summary"][key]
            assert stat["n"] == SEEDS and stat["low"] <= stat["mean"] <= stat["high"], (name, key)
        assert entry["description"] == VARIANTS[name].description and entry["about"] == VARIANTS[name].about
        assert ("vs_baseline" in entry) == (name != "bce|bce")
    assert data["variants"]["bce|ssim"]["losses"] == {"mask": "bce", "depth": "ssim"}
    assert set(data["lr_question"]["restart_minus_continue"]) == set(METRIC_NAMES)
    assert data["command"] == "test" and data["base_config"]["steps"] == 2
    assert data["budget"]["seeds"] == SEEDS and data["budget"]["runs"] == SEEDS * len(CHOSEN)
    assert result.table()["bce|bce"]["time_s"] >= 0


def test_seeds_share_init_and_order_across_variants(comparison) -> None:
    _, result, _ = comparison
    for name in ("bce|bce", "bce|ssim"):
        for seed in result.variants[name]["seeds"]:
            cfg = json.loads((result.folder / seed["run_dir"] / "train_config.json").read_text())
            assert cfg["seed"] == seed["seed"]
    assert result.variants["bce|bce"]["seeds"][1]["run_dir"] == "bce-bce-seed1"


def test_paired_differences_are_per_seed(comparison) -> None:
    _, result, _ = comparison
    a, b = result.variants["bce|ssim"], result.variants["bce|bce"]
    diffs = [
        x["metrics"]["depth_rmse"] - y["metrics"]["depth_rmse"]
        for x, y in zip(a["seeds"], b["seeds"], strict=True)
    ]
    assert a["vs_baseline"]["depth_rmse"]["mean"] == pytest.approx(sum(diffs) / len(diffs))


def test_verdict_states_its_method_and_every_variant(comparison) -> None:
    _, result, _ = comparison
    assert "paired by seed" in result.verdict and "excludes zero" in result.verdict
    for name in CHOSEN:
        assert f"**{name}**" in result.verdict
    assert "restart or continue the learning rate?" in result.verdict
    assert "Winner" not in result.verdict


def test_gallery_has_a_row_per_variant_and_samples_from_different_rooms(comparison) -> None:
    _, result, _ = comparison
    gallery = result.gallery
    assert list(gallery["rows"]) == CHOSEN and gallery["seed"] == 0
    scenes = [s["scene"] for s in gallery["samples"]]
    assert len(set(scenes)) >= 3, scenes  # the test split's first samples would all be one room
    for sample in gallery["samples"]:
        for key in ("input", "background", "mask", "depth"):
            assert (result.folder / sample[key]).is_file()
    for tiles in gallery["rows"].values():
        assert len(tiles) == len(gallery["samples"])
        assert all(
            (result.folder / t["mask"]).is_file() and (result.folder / t["depth"]).is_file() for t in tiles
        )


def test_resume_pair_shares_one_half_trained_run_per_seed(comparison) -> None:
    _, result, events = comparison
    for k, suffix in enumerate(("", "-seed1")):
        half = result.folder / f"_half{suffix}"
        assert (half / "last.pt").is_file()
        for name, how in (("resume continue-lr", "continue"), ("resume restart-lr", "restart")):
            seed = result.variants[name]["seeds"][k]
            cfg = json.loads((result.folder / seed["run_dir"] / "train_config.json").read_text())
            assert (cfg["resume"], cfg["resume_lr"], cfg["steps"]) == (str(half), how, 1)  # half of 2 steps
            assert seed["curve"]["step"][-1] == 2  # the resumed half's steps follow the first half's
    # Seed by seed, variants in order; the half run trains once per seed, under the first resume variant.
    done = [(key.seed_index, key.variant) for key, e in events if isinstance(e, DoneEvent)]
    per_seed = ["bce|bce", "bce|ssim", "resume continue-lr", "resume continue-lr", "resume restart-lr"]
    assert done == [(0, n) for n in per_seed] + [(1, n) for n in per_seed]
    keys = {key for key, e in events if isinstance(e, StepEvent)}
    assert sorted(k.index for k in keys) == list(range(SEEDS * len(CHOSEN)))
    assert all(k.total == SEEDS * len(CHOSEN) for k in keys)


def test_load_comparison_reads_it_back(comparison, tmp_path: Path) -> None:
    _, result, _ = comparison
    loaded = load_comparison(result.folder)
    assert loaded is not None
    assert list(loaded.variants) == CHOSEN
    assert loaded.variants == json.loads(json.dumps(result.variants))
    assert loaded.verdict == result.verdict and loaded.gallery == result.gallery
    assert loaded.seeds == [0, 1] and loaded.command == "test" and loaded.budget == result.budget
    assert load_comparison(tmp_path) is None


def test_unknown_variant_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(TrainingError) as info:
        run_comparison(tiny_config(tmp_path, steps=1), ["bce|bce", "magic"], tmp_path / "cmp")
    message = str(info.value)
    assert "magic" in message
    assert all(name in message for name in VARIANTS)
    assert not (tmp_path / "cmp" / "bce-bce").exists()  # checked before training anything
    with pytest.raises(TrainingError, match="seeds must be >= 1"):
        run_comparison(tiny_config(tmp_path, steps=1), ["bce|bce"], tmp_path / "cmp", seeds=0)


def test_shipped_command_trains_every_run_at_least_300_steps_with_3_seeds() -> None:
    command = shipped_command().split()
    assert command[:4] == ["python", "-m", "maskdepth", "compare"]
    assert int(command[command.index("--steps") + 1]) >= 300
    assert int(command[command.index("--seeds") + 1]) >= 3
    assert command[-2:] == ["--out", "comparisons/default"]


def test_the_compare_tabs_command_reproduces_the_shipped_comparison() -> None:
    """The command the Compare tab shows is the one comparisons/default records, and today's CLI reads it
    into the base config that comparison ran with (the losses aside: every variant sets its own)."""
    from maskdepth.__main__ import build_parser
    from maskdepth.training.settings import config_from_args

    shipped = json.loads(
        (Path(__file__).resolve().parents[1] / "comparisons/default/results.json").read_text()
    )
    assert shipped_command() == shipped["command"]
    args = build_parser().parse_args(shipped_command().split()[3:])
    base = config_from_args(args, out_dir=args.out).to_dict()
    recorded = {k: v for k, v in shipped["base_config"].items() if k not in ("mask_loss", "depth_loss")}
    assert {k: base[k] for k in recorded} == recorded
    assert (base["scene_families"], base["two_shot"], base["min_size"]) == ("rooms", False, 0)
    assert args.seeds == shipped["budget"]["seeds"]


def test_cli_compare_takes_seeds(tmp_path: Path, capsys) -> None:
    from maskdepth.__main__ import main

    out = tmp_path / "cmp"
    tiny = [
        "--backgrounds",
        "2",
        "--foregrounds",
        "2",
        "--positions",
        "2",
        "--base-width",
        "4",
        "--size",
        "32",
    ]
    argv = ["compare", "--variants", "bce|bce", "bce|rmse", "--steps", "1", "--batch-size", "4", *tiny]
    assert main([*argv, "--seeds", "2", "--out", str(out)]) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["seeds"] == [0, 1] and "--seeds 2" in data["command"]
    assert "Depth edge F1" in capsys.readouterr().out  # the printed table has the new metrics

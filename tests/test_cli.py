"""Tests for the command line (maskdepth.__main__): mostly in-process through ``main(argv)``,
plus one real ``python -m maskdepth`` subprocess for the exit code and the one-line error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support.entry import cli_error, predict_args
from support.models import scene, tiny_model, write_image

import maskdepth
from maskdepth.__main__ import build_parser, main
from maskdepth.hub.transfer import save_model

REPO = Path(__file__).resolve().parent.parent
OUTPUTS = ("mask.png", "depth.png", "depth16.png", "depth_color.png")
TINY_TRAIN = [
    "--backgrounds", "2", "--foregrounds", "2", "--positions", "2",
    "--base-width", "4", "--size", "32", "--batch-size", "4", "--eval-samples", "4",
]  # fmt: skip


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(tiny_model(image_size=32), tmp_path_factory.mktemp("cli") / "tiny")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pair")
    return write_image(folder / "fg_bg.png", 40, 30, seed=1), write_image(folder / "bg.png", 40, 30, seed=2)


def sizes(folder: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for name in OUTPUTS:
        with Image.open(folder / name) as img:
            out[name] = img.size
    return out


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "maskdepth", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


# ---- predict ---------------------------------------------------------------------------------


def test_predict_writes_four_files_at_the_input_size(
    model_dir: Path, pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    image, bg = pair
    code = main(predict_args(model_dir, image, bg, tmp_path / "out"))
    assert code == 0
    assert sizes(tmp_path / "out") == dict.fromkeys(OUTPUTS, (40, 30))
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in printed) == sorted(OUTPUTS)


def test_predict_depth_view_option(model_dir: Path, pair: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    """The default depth comes from the ensemble (mirror image included); --depth-view none from the
    working forward; the stderr line says which."""
    image, bg = pair
    depths = {}
    for view in ("ensemble", "none"):
        extra = [] if view == "ensemble" else ["--depth-view", view]
        assert main(predict_args(model_dir, image, bg, tmp_path / view) + extra) == 0
        err = capsys.readouterr().err
        assert ("mirror images included" in err) == (view == "ensemble") and "model ran at" in err
        depths[view] = np.asarray(Image.open(tmp_path / view / "depth16.png"))
    assert not np.array_equal(depths["ensemble"], depths["none"])


def test_predict_on_a_folder_writes_one_folder_per_image(model_dir: Path, tmp_path: Path, capsys) -> None:
    images = tmp_path / "images"
    images.mkdir()
    write_image(images / "first.png", 40, 30, seed=3)
    Image.fromarray(scene(40, 30)).resize((60, 45)).save(images / "second.jpg")  # the scene, larger
    (images / "notes.txt").write_text("not an image; skipped")
    bg = write_image(tmp_path / "bg.png", 40, 30, seed=5)

    code = main(predict_args(model_dir, images, bg, tmp_path / "out"))
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["first", "second"]
    assert sizes(tmp_path / "out" / "first") == dict.fromkeys(OUTPUTS, (40, 30))
    assert sizes(tmp_path / "out" / "second") == dict.fromkeys(OUTPUTS, (60, 45))
    assert "wrote 2 folders" in capsys.readouterr().out


def test_predict_a_non_image_exits_2_with_one_line(
    model_dir: Path, pair: tuple[Path, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "photo.png"
    bad.write_text("this is not a PNG")
    proc = run_cli(*predict_args(model_dir, bad, pair[1], tmp_path / "o"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "photo.png" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("make_args", "needle"),
    [
        (lambda m, img, bg, tmp: ["--image", str(tmp / "missing.png"), "--bg", str(bg)], "does not exist"),
        (lambda m, img, bg, tmp: ["--image", str(img)], "background"),
        (lambda m, img, bg, tmp: ["--image", str(img), "--bg", str(bg), "--depth-view", "big"], "'ensemble'"),
    ],
    ids=["missing-image", "missing-bg", "bad-depth-view"],
)
def test_predict_user_errors_exit_2(model_dir, pair, tmp_path: Path, capsys, make_args, needle: str) -> None:
    image, bg = pair
    code = main(
        [
            "predict",
            "--model",
            str(model_dir),
            "--out",
            str(tmp_path / "o"),
            *make_args(model_dir, image, bg, tmp_path),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and len(err.splitlines()) == 1


# ---- data + evaluate -----------------------------------------------------------------------------


def test_export_data_then_evaluate_prints_the_metrics_table(model_dir: Path, tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    assert main(["export-data", "--out", str(data), "-n", "6", "--size", "32"]) == 0
    assert len(list((data / "Fg-Bg").iterdir())) == 6
    capsys.readouterr()

    assert main(["evaluate", "--dataset", str(data), "--model", str(model_dir)]) == 0
    out = capsys.readouterr().out
    for label in ("Mask IoU", "Mask Dice", "Depth RMSE", "Depth δ<1.25", "loss"):
        assert label in out
    assert "2 images of the test split" in out  # 70:30 of 6 samples


def test_evaluate_limit_takes_samples_spread_over_the_split(model_dir: Path, monkeypatch, capsys) -> None:
    """Samples are ordered by scene: the first N of the test split would all show one background."""
    import maskdepth.training.evaluate as evaluate_module

    real, seen = evaluate_module.evaluate, []

    def spy(model, subset, **kwargs):
        seen.extend(
            subset.dataset.dataset.background_index(subset.dataset.indices[i]) for i in subset.indices
        )
        return real(model, subset, **kwargs)

    monkeypatch.setattr(evaluate_module, "evaluate", spy)
    argv = [
        "evaluate",
        "--model",
        str(model_dir),
        "--backgrounds",
        "4",
        "--foregrounds",
        "2",
        "--positions",
        "2",
    ]
    assert main([*argv, "--size", "32", "--limit", "4"]) == 0
    assert len(seen) == 4 and len(set(seen)) >= 3
    assert "4 images of the test split" in capsys.readouterr().out


# ---- train -----------------------------------------------------------------------------------------


def test_train_writes_a_run_folder_with_a_model_card(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    argv = ["train", "--steps", "3", *TINY_TRAIN, "--out", str(out)]
    assert main(argv) == 0
    for name in (
        "config.json",
        "model.safetensors",
        "train_config.json",
        "metrics.json",
        "last.pt",
        "README.md",
    ):
        assert (out / name).is_file(), name
    card = (out / "README.md").read_text()
    assert card.startswith("---") and "library_name: maskdepth" in card
    assert "python -m maskdepth " + " ".join(argv) in card  # the command that reproduces the run
    assert "run folder:" in capsys.readouterr().out
    assert maskdepth.load_model(out).base_width == 4
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 3


def test_train_without_a_budget_trains_one_epoch(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # test fraction 0.25: 12 of the 16 samples train, exactly 3 batches of 4.
    assert main(["train", *TINY_TRAIN, "--test-fraction", "0.25", "--out", str(out)]) == 0
    cfg = json.loads((out / "train_config.json").read_text())
    assert (cfg["epochs"], cfg["steps"], cfg["minutes"]) == (1.0, None, None)
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 3


def test_train_help_states_the_budget_rule(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--epochs" in help_text and "--steps" in help_text and "--minutes" in help_text
    assert "first limit reached" in help_text and "1 epoch" in help_text


def test_bad_train_config_exits_2(tmp_path: Path, capsys) -> None:
    assert main(["train", "--steps", "0", *TINY_TRAIN, "--out", str(tmp_path / "run")]) == 2
    assert "steps must be > 0" in capsys.readouterr().err


# ---- compare ----------------------------------------------------------------------------------------


def test_compare_prints_the_table_and_the_verdict(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cmp"
    assert main(["compare", "--variants", "bce|bce", "--steps", "1", *TINY_TRAIN, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bce|bce" in printed and "**bce|bce**" in printed and "Baseline" in printed
    assert json.loads((out / "results.json").read_text())["command"].startswith("python -m maskdepth compare")


def test_compare_unknown_variant_lists_the_valid_ones(tmp_path: Path, capsys) -> None:
    assert main(["compare", "--variants", "nope", "--steps", "1", "--out", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "bce|ssim" in err


# ---- help ---------------------------------------------------------------------------------------------


def subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_train_help_says_what_the_handheld_share_does(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--handheld HANDHELD two shots: share of backgrounds re-shot as by hand" in text
    assert "registered back onto the composite as prediction does" in text


def test_every_documented_command_exists() -> None:
    assert {"train", "evaluate", "predict", "export-data", "compare", "push", "pull"} <= set(subcommands())


@pytest.mark.parametrize("command", [[], *([c] for c in subcommands())], ids=lambda c: " ".join(c) or "top")
def test_help_works(command: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert "usage: python -m maskdepth" in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


# ---- the settings metadata (maskdepth.training.settings) -------------------------------------------------------


def test_every_config_field_has_metadata_and_the_cli_keeps_its_flags() -> None:
    import dataclasses

    from maskdepth.training.config import TrainConfig
    from maskdepth.training.settings import setting, settings

    assert [s.name for s in settings()] == [f.name for f in dataclasses.fields(TrainConfig)]
    assert setting("num_workers").flag == "--workers" and setting("out_dir").flag == "--out"
    assert (setting("flips").flag, setting("flips").negated) == ("--no-flips", True)
    assert setting("channels_last").flag == "--no-channels-last" and setting("augment").flag == "--no-augment"
    assert (setting("sync_bn").flag, setting("sync_bn").negated) == ("--sync-bn", False)
    assert setting("precision").choices == ("auto", "bf16", "fp32")
    assert setting("mask_loss").choices == ("bce", "dice", "bce+dice")
    assert setting("resume_lr").choices == ("continue", "restart")
    assert not setting("sample_every").cli and setting("sample_every").ui
    flags = {a for action in _train_parser()._actions for a in action.option_strings}
    assert {s.flag for s in settings() if s.cli} <= flags


def _train_parser(command: str = "train"):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[command]


def test_evaluate_and_compare_take_only_the_settings_that_mean_something_to_them() -> None:
    flags = {
        command: {flag for action in _train_parser(command)._actions for flag in action.option_strings}
        for command in ("train", "evaluate", "compare")
    }
    # evaluate scores a saved model: the data, its split, the losses it reports, the batch.
    assert {"--scene-families", "--relight", "--size", "--seed", "--mask-loss", "--batch-size"} <= flags[
        "evaluate"
    ]
    assert {"--lr", "--minutes", "--resume", "--base-width", "--min-size", "--precision"}.isdisjoint(
        flags["evaluate"]
    )
    # compare trains variants that set their own losses, parts and resume.
    assert {"--scene-families", "--no-two-shot", "--lr", "--steps", "--base-width", "--seeds"} <= flags[
        "compare"
    ]
    assert {"--mask-loss", "--grad-weight", "--parts", "--resume", "--resume-lr", "--sync-bn"}.isdisjoint(
        flags["compare"]
    )
    assert "--config" in flags["train"] and "--config" not in flags["evaluate"] | flags["compare"]
    assert {"--two-shot", "--no-two-shot", "--flips", "--no-flips"} <= flags["train"]  # both ways


def test_to_cli_args_round_trips_through_the_parser() -> None:
    from maskdepth.training.config import TrainConfig
    from maskdepth.training.settings import config_from_args, to_cli_args

    cfg = TrainConfig(
        steps=7,
        flips=False,
        channels_last=False,
        sync_bn=True,
        num_workers=2,
        precision="fp32",
        out_dir="runs/x y",
        resume_lr="restart",
        mask_loss="dice",
        lr=0.01,
    )
    args = to_cli_args(cfg)
    assert args[:2] == ["--no-flips", "--mask-loss"] and "--workers" in args and "--sync-bn" in args
    assert to_cli_args(TrainConfig(steps=1)) == ["--steps", "1"]
    assert to_cli_args(TrainConfig(steps=1), always=("out_dir",)) == ["--steps", "1", "--out", "runs/run"]
    again = config_from_args(build_parser().parse_args(["train", *args]))
    assert again == cfg


def test_budget_flags_reject_non_positive_values(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--minutes", "0"])
    assert "must be > 0" in capsys.readouterr().err


# ---- predict --ply, export-onnx ------------------------------------------------------------------------

EXAMPLES = REPO / "examples"


def test_predict_ply_writes_a_point_cloud_of_a_real_photo(tmp_path: Path, capsys) -> None:
    """--ply with the shipped model on a real photo: scene.ply beside the images, read back by plyfile:
    coloured points spread in depth, capped at 200k."""
    from plyfile import PlyData

    from maskdepth.hub.checkpoint import SHIPPED_DIR
    from maskdepth.training.runs import is_model_dir

    if not is_model_dir(SHIPPED_DIR):
        pytest.skip(f"the shipped model is not installed in {SHIPPED_DIR}")
    photos = [
        "--image",
        str(EXAMPLES / "coffee_coin_fg_bg.jpg"),
        "--bg",
        str(EXAMPLES / "coffee_coin_bg.jpg"),
    ]
    run = ["predict", "--model", str(SHIPPED_DIR), *photos, "--resolution", "fast", "--depth-view", "none"]
    assert main([*run, "--out", str(tmp_path / "o"), "--ply"]) == 0
    assert str(tmp_path / "o" / "scene.ply") in capsys.readouterr().out.split()
    vertex = PlyData.read(tmp_path / "o" / "scene.ply")["vertex"]
    assert {"x", "y", "z", "red", "green", "blue", "object"} <= {p.name for p in vertex.properties}
    xyz = np.stack([vertex["x"], vertex["y"], vertex["z"]], -1)
    rgb = np.stack([vertex["red"], vertex["green"], vertex["blue"]], -1)
    assert 10_000 <= len(xyz) <= 200_000 < 600 * 400  # the photo is 600x400: the cloud is capped
    assert np.isfinite(xyz).all() and (xyz[:, 2] < 0).all()  # z towards the viewer: the scene is at z < 0
    assert np.ptp(xyz[:, 2]) > 0.5 and len(np.unique(rgb, axis=0)) > 1000  # depth varies; the photo's colours
    assert 0 < vertex["object"].sum() < len(xyz)  # the coin is marked

    # --fov alone implies --ply; a wider view spreads the same points wider (x ~ tan(fov / 2)).
    assert main([*run, "--out", str(tmp_path / "w"), "--fov", "90"]) == 0
    wide = PlyData.read(tmp_path / "w" / "scene.ply")["vertex"]
    assert np.allclose(wide["x"], vertex["x"] / np.tan(np.radians(27.5)), rtol=1e-4, atol=1e-5)
    assert np.array_equal(wide["z"], vertex["z"])


def test_predict_ply_in_batch_mode_writes_one_cloud_per_pair(model_dir: Path, tmp_path: Path) -> None:
    images, bgs = tmp_path / "images", tmp_path / "bgs"
    images.mkdir(), bgs.mkdir()
    for name in ("coffee_coin", "brick_rocket"):  # real pairs: the background is the composite's scene
        shutil.copy(EXAMPLES / f"{name}_fg_bg.jpg", images / f"{name}.jpg")
        shutil.copy(EXAMPLES / f"{name}_bg.jpg", bgs / f"{name}.jpg")
    argv = predict_args(model_dir, images, bgs, tmp_path / "out")
    assert main([*argv, "--ply", "--object-only", "--resolution", "fast", "--depth-view", "none"]) == 0
    for name in ("coffee_coin", "brick_rocket"):
        assert (tmp_path / "out" / name / "scene.ply").read_bytes().startswith(b"ply\n")
        assert (tmp_path / "out" / name / "mask.png").is_file()


def test_predict_bad_fov_exits_2_before_the_model_loads(
    pair: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    image, bg = pair
    line = cli_error(
        predict_args(tmp_path / "no-model", image, bg, tmp_path / "o") + ["--fov", "200"], capsys
    )
    assert "field of view" in line  # not the missing model: the flags are checked first
    assert not (tmp_path / "o").exists()


def test_export_onnx_writes_a_file_onnxruntime_runs(model_dir: Path, tmp_path: Path, capsys) -> None:
    import onnxruntime as ort

    out = tmp_path / "exports" / "tiny.onnx"
    assert main(["export-onnx", "--model", str(model_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0].startswith(f"wrote {out} (") and printed[0].endswith(" MB)")
    assert printed[1].startswith("input (B, 6, H, W) float32") and "multiples of 32" in printed[1]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-1, 1, (1, 6, 64, 96)).astype(np.float32)
    mask, depth = session.run(["mask", "depth"], {"input": x})
    assert mask.shape == depth.shape == (1, 1, 64, 96) and np.isfinite(depth).all()


@pytest.mark.parametrize("case", ["not-a-model", "unwritable", "out-is-a-folder"])
def test_export_onnx_bad_input_exits_2_with_one_line_and_no_file(
    model_dir: Path, tmp_path: Path, capsys, case: str
) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no weights here")
    (tmp_path / "a-file").write_text("a file where a folder should be")
    model, out, needle = {
        "not-a-model": (tmp_path / "notes", tmp_path / "x" / "m.onnx", "model.safetensors"),
        "unwritable": (model_dir, tmp_path / "a-file" / "m.onnx", "choose a folder"),
        "out-is-a-folder": (model_dir, tmp_path / "notes", "give a file name"),
    }[case]
    before = sorted(tmp_path.rglob("*"))
    line = cli_error(["export-onnx", "--model", str(model), "--out", str(out)], capsys)
    assert needle in line
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, not even a temp file

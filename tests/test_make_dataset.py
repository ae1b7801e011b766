"""make-dataset: your own photos pasted the seed's way, with depth from a teacher (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from maskdepth.__main__ import main
from maskdepth.data.cutouts import place
from maskdepth.data.make_dataset import MakeSettings, make_dataset
from maskdepth.errors import InputError
from maskdepth.predict.teachers import metric_to_depth, open_teacher, relative_to_depth

BACKGROUNDS = ("astronaut", "coffee", "chelsea")
TINY_TRAIN = ["--steps", "3", "--base-width", "4", "--size", "32", "--batch-size", "4", "--eval-samples", "4"]


def _triangle(h: int, w: int) -> np.ndarray:
    """(h, w) bool: the upper-right triangle (not mirror-symmetric, so a mirror shows)."""
    yy, xx = np.mgrid[:h, :w]
    return (xx + 0.5) / w >= (yy + 0.5) / h


@pytest.fixture
def photos(tmp_path: Path) -> tuple[Path, Path]:
    """3 real photos as backgrounds and 2 cut-outs made from real photos with a triangle alpha."""
    bgs, objs = tmp_path / "backgrounds", tmp_path / "objects"
    bgs.mkdir()
    objs.mkdir()
    for name in BACKGROUNDS:
        Image.fromarray(getattr(skdata, name)()).save(bgs / f"{name}.jpg")
    for name in ("rocket", "hubble_deep_field"):
        rgb = getattr(skdata, name)()[:120, :90]
        alpha = _triangle(*rgb.shape[:2]).astype(np.uint8) * 255
        Image.fromarray(np.dstack([rgb, alpha])).save(objs / f"{name}.png")
    return bgs, objs


def _make(photos, out: Path, *extra: str) -> int:
    bgs, objs = photos
    argv = ["make-dataset", "--backgrounds", str(bgs), "--objects", str(objs), "--positions", "2"]
    return main([*argv, "--out", str(out), "--size", "64", *extra])


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_shipped_teacher_24_samples_masks_are_the_outlines_and_train_runs(photos, tmp_path, capsys):
    out = tmp_path / "made"
    assert _make(photos, out, "--depth", "shipped") == 0
    assert sorted(p.name for p in out.iterdir()) == ["bg", "depth", "fg_bg", "manifest.json", "mask"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["samples"] == 24 and manifest["depth"]["source"] == "shipped"
    assert manifest["depth"]["licence"] == "mit"
    for folder in ("bg", "fg_bg", "mask", "depth"):
        assert len(list((out / folder).iterdir())) == 24
    # Sample i = ((b * 2 + o) * 2 + p) * 2 + m: recompute each outline independently of paste().
    for i in range(24):
        b, rest = divmod(i, 8)
        o, rest = divmod(rest, 4)
        p, m = divmod(rest, 2)
        where = place((90, 120), 64, np.random.default_rng([0, b, o, p]))
        expected = np.zeros((64, 64), bool)
        tri = _triangle(where.h, where.w)
        expected[where.y : where.y + where.h, where.x : where.x + where.w] = tri[:, ::-1] if m else tri
        mask = _png(out / "mask" / f"{i + 1:05d}.png") > 127
        iou = (mask & expected).sum() / (mask | expected).sum()
        assert iou > 0.85, (i, iou)
        box = np.zeros((64, 64), bool)
        box[where.y : where.y + where.h, where.x : where.x + where.w] = True
        assert not (mask & ~box).any()
        depth = _png(out / "depth" / f"{i + 1:05d}.png")
        assert depth.dtype == np.uint16 and depth.std() > 0
    assert main(["train", "--dataset", str(out), *TINY_TRAIN, "--out", str(tmp_path / "run")]) == 0
    assert "finished after 3 steps" in capsys.readouterr().out


def test_seed_layout_and_masks_only_are_refused_by_train_with_the_fix(photos, tmp_path, capsys):
    out = tmp_path / "seedset"
    assert _make(photos, out, "--depth", "none", "--layout", "seed") == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "Bg",
        "Fg-Bg",
        "Fg-Bg-Mask",
        "layout.json",
        "manifest.json",
    ]
    assert len(list((out / "Bg").iterdir())) == 3
    assert json.loads((out / "layout.json").read_text()) == {
        "layout": "seed",
        "per_background": 8,
        "per_set": 24,
    }
    capsys.readouterr()
    assert main(["train", "--dataset", str(out), *TINY_TRAIN, "--out", str(tmp_path / "run")]) == 2
    assert "--depth none (masks only)" in capsys.readouterr().err


# ---------------------------------------------------------------- the transformers teacher


def _tiny_dpt(folder: Path) -> Path:
    """A randomly initialised DPT depth model and its image processor, saved as a Hub model would be."""
    transformers = pytest.importorskip("transformers")
    cfg = transformers.DPTConfig(
        image_size=32,
        patch_size=16,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=37,
        backbone_out_indices=[0, 1, 2, 3],
        neck_hidden_sizes=[16, 16, 32, 32],
        fusion_hidden_size=16,
        is_hybrid=False,
    )
    transformers.DPTForDepthEstimation(cfg).save_pretrained(folder)
    transformers.DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False).save_pretrained(
        folder
    )
    return folder


def test_transformers_teacher_end_to_end_on_a_local_tiny_dpt(photos, tmp_path):
    teacher = _tiny_dpt(tmp_path / "tiny-dpt")
    out = tmp_path / "made"
    assert _make(photos, out, "--depth", str(teacher)) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert "dpt, relative inverse depth" in manifest["depth"]["teacher"]
    assert "98" in manifest["depth"]["normalisation"]
    depth = np.stack([_png(p) for p in sorted((out / "depth").iterdir())]).astype(np.float64) / 65535
    assert depth.shape == (24, 64, 64) and depth.min() == 0.0 and depth.max() == 1.0


def test_teacher_output_near_maps_to_one(photos, tmp_path, monkeypatch):
    """A teacher whose disparity is high on the left (near) and low on the right gives left = 1."""
    import maskdepth.predict.teachers as teachers

    class FakePipe:
        model = type("M", (), {"config": type("C", (), {"model_type": "dpt"})()})()

        def __call__(self, images, batch_size):
            disparity = np.tile(np.linspace(10.0, 1.0, 16, dtype=np.float32), (16, 1))  # model's own size
            return [{"predicted_depth": disparity[None]} for _ in images]

    monkeypatch.setattr(teachers, "_load_pipeline", lambda source, device: FakePipe())
    monkeypatch.setattr(teachers, "_licence", lambda source: "apache-2.0")
    out = tmp_path / "made"
    assert _make(photos, out, "--depth", "someone/depth-model") == 0
    depth = _png(out / "depth" / "00001.png") / 65535
    assert depth[:, :3].min() > 0.95 and depth[:, -3:].max() < 0.05
    assert json.loads((out / "manifest.json").read_text())["depth"]["licence"] == "apache-2.0"


def test_depth_conversions_follow_the_convention():
    disparity = np.concatenate([np.full(50, 100.0), np.linspace(1, 2, 50)]).reshape(10, 10)
    depth = relative_to_depth(disparity)
    assert depth.max() == 1.0 and depth.min() == 0.0 and depth[0, 0] == 1.0  # near (large disparity) = 1
    assert np.all(relative_to_depth(np.ones((4, 4))) == 0.5)
    assert np.allclose(metric_to_depth(np.array([0.5, 1.0, 2.0, 4.0, np.inf])), [1.0, 1.0, 0.5, 0.25, 0.0])


# ---------------------------------------------------------------- resuming


def test_an_interrupted_run_never_looks_finished_and_the_next_run_continues(photos, tmp_path):
    bgs, objs = photos
    settings = MakeSettings(str(bgs), str(objs), str(tmp_path / "made"), positions=2, depth="none", size=64)

    def stop_after_8(done: int, total: int) -> None:
        if done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_dataset(settings, open_teacher, on_progress=stop_after_8)
    assert not (tmp_path / "made").exists()
    partial = tmp_path / ".made.partial"
    assert len(list((partial / "fg_bg").iterdir())) == 8
    made = make_dataset(settings, open_teacher)
    assert (made.samples, made.written) == (24, 16) and not partial.exists()
    assert (
        make_dataset(settings, open_teacher).written == 0
    )  # finished: the same command again has nothing to do
    fresh = make_dataset(
        MakeSettings(str(bgs), str(objs), str(tmp_path / "fresh"), positions=2, depth="none", size=64),
        open_teacher,
    )
    for folder in ("bg", "fg_bg", "mask"):
        for a in sorted((made.out / folder).iterdir()):
            assert np.array_equal(_png(a), _png(fresh.out / folder / a.name)), a


def test_a_partial_run_with_other_settings_is_not_mixed_in(photos, tmp_path):
    bgs, objs = photos
    settings = MakeSettings(str(bgs), str(objs), str(tmp_path / "made"), positions=2, depth="none", size=64)
    with pytest.raises(KeyboardInterrupt):
        make_dataset(
            settings, open_teacher, on_progress=lambda d, t: (_ for _ in ()).throw(KeyboardInterrupt)
        )
    other = MakeSettings(
        str(bgs), str(objs), str(tmp_path / "made"), positions=2, depth="none", size=64, seed=1
    )
    with pytest.raises(InputError, match="unfinished run with other settings"):
        make_dataset(other, open_teacher)


# ---------------------------------------------------------------- bad input


def _fails(photos, tmp_path, capsys, *extra: str) -> str:
    capsys.readouterr()
    assert _make(photos, tmp_path / "made", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert not any(p.name.startswith((".made", "made")) for p in tmp_path.iterdir())  # nothing half-written
    return err


def test_a_cutout_without_transparency_is_refused_naming_key_border(photos, tmp_path, capsys):
    _, objs = photos
    rgb = np.full((60, 40, 3), 255, np.uint8)
    rgb[10:50, 10:30] = skdata.astronaut()[:40, :20]
    Image.fromarray(rgb).save(objs / "flat.jpg")
    assert "pass --key-border" in _fails(photos, tmp_path, capsys, "--depth", "none")
    assert _make(photos, tmp_path / "keyed", "--depth", "none", "--key-border") == 0
    mask = _png(tmp_path / "keyed" / "mask" / "00001.png") > 127  # the keyed cut-out is object 0 (sorted)
    assert 0 < mask.mean() < 0.5


def test_key_border_refuses_a_border_of_many_colours(photos, tmp_path, capsys):
    _, objs = photos
    Image.fromarray(skdata.coffee()[:80, :80]).save(objs / "photo.png")
    assert "border is not one colour" in _fails(photos, tmp_path, capsys, "--depth", "none", "--key-border")


@pytest.mark.parametrize("name, content", [("notes.txt", b"hello"), ("broken.png", b"not a png at all")])
def test_files_that_are_not_images_are_named(photos, tmp_path, capsys, name, content):
    _, objs = photos
    (objs / name).write_bytes(content)
    err = _fails(photos, tmp_path, capsys, "--depth", "none")
    assert name in err and ("move them out" in err or "not a readable image" in err)


def test_a_model_that_is_not_a_depth_model_is_refused(photos, tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    folder = tmp_path / "tiny-bert"
    cfg = transformers.BertConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, vocab_size=50
    )
    transformers.BertModel(cfg).save_pretrained(folder)
    err = _fails(photos, tmp_path, capsys, "--depth", str(folder))
    assert "is a bert model, not a depth-estimation model" in err


@pytest.mark.parametrize(
    "raised, expected",
    [
        ("someone/nope is not a local folder and is not a valid model identifier", "no model 'someone/nope'"),
        ("We couldn't connect to 'https://huggingface.co' to load the files", "no network"),
    ],
)
def test_a_missing_teacher_or_no_network_is_one_line(photos, tmp_path, capsys, monkeypatch, raised, expected):
    transformers = pytest.importorskip("transformers")

    def no_config(*args, **kwargs):
        raise OSError(raised)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", no_config)
    assert expected in _fails(photos, tmp_path, capsys, "--depth", "someone/nope")


def test_without_transformers_the_message_names_the_install(photos, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    assert "pip install transformers" in _fails(photos, tmp_path, capsys, "--depth", "someone/depth-model")

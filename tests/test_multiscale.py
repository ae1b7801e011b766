"""Multi-scale training (maskdepth.data.multiscale): random shapes per batch, the trained range in the config."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import Subset

from maskdepth import load_model
from maskdepth.data.multiscale import AtShapes, ShapeBatches, background_bytes, batch_shapes, cache_renders
from maskdepth.data.synthetic import SyntheticScenes
from maskdepth.errors import TrainingError
from maskdepth.training import distributed
from maskdepth.training.loop import RunData, TrainConfig, train


def test_shapes_are_multiples_of_32_in_range_with_bounded_aspect() -> None:
    shapes = batch_shapes(64, 160)
    assert (64, 64) in shapes and (160, 160) in shapes and (64, 128) in shapes and (128, 64) in shapes
    assert (64, 160) not in shapes  # 2.5:1
    for h, w in shapes:
        assert h % 32 == 0 and w % 32 == 0 and 64 <= min(h, w) and max(h, w) <= 160
        assert max(h, w) / min(h, w) <= 2
    assert batch_shapes(40, 96) == batch_shapes(64, 96)  # the low end rounds up to a multiple of 32
    with pytest.raises(TrainingError, match="multiples of 32"):
        batch_shapes(40, 50)


def test_batches_keep_the_order_and_one_deterministic_shape_each() -> None:
    shapes = batch_shapes(32, 128)
    order = list(range(23))
    batches = list(ShapeBatches(order, 5, drop_last=True, shapes=shapes, seed=3))
    assert len(batches) == len(ShapeBatches(order, 5, True, shapes, 3)) == 4
    assert [i for b in batches for i, _ in b] == order[:20]
    assert all(len({s for _, s in b}) == 1 for b in batches)
    assert batches == list(ShapeBatches(order, 5, True, shapes, 3))  # reproducible
    kept = list(ShapeBatches(order, 5, drop_last=False, shapes=shapes, seed=3))
    assert len(kept) == 5 and len(kept[-1]) == 3
    many = list(ShapeBatches(range(400), 2, True, shapes, 0))
    assert len({b[0][1] for b in many}) > len(shapes) // 2  # the draw covers the range


def test_a_sample_at_another_shape_is_the_same_scene_rendered_there() -> None:
    ds = SyntheticScenes(3, 2, 2, size=64, families="all", two_shot=True)
    same = ds.at_shape((64, 64))
    a, b = ds[5], same[5]
    assert all(torch.equal(a[k], b[k]) for k in a)
    wide = AtShapes(Subset(ds, [5, 7]), [(64, 64), (64, 128)])[(0, (64, 128))]
    assert wide["fg_bg"].shape == (3, 64, 128) and wide["mask"].shape == (1, 64, 128)
    assert 0 < wide["mask"].mean() < 0.5  # the object is there, at the new shape's scale


def test_every_shape_caches_the_same_number_of_renders_within_the_budget() -> None:
    shapes = batch_shapes(96, 160)
    n = cache_renders(shapes)
    assert n >= 200  # the training mix of 100 scenes (plus their classic rooms) fits at every shape
    assert n * sum(background_bytes(s) for s in shapes) <= 3 * 1024**3
    assert cache_renders(shapes, budget=0) == 4  # never fewer than a batch's few backgrounds
    ds = SyntheticScenes(3, 2, 2, size=64, families="all")
    data = AtShapes(Subset(ds, [0, 1]), shapes)
    data[(0, (96, 128))]
    assert data._views[(96, 128)].cache_size == n


def test_the_loader_draws_shapes_and_evaluation_stays_square(tmp_path) -> None:
    cfg = TrainConfig(
        backgrounds=2, foregrounds=2, positions=4, size=96, min_size=32, batch_size=2, steps=1,
        out_dir=str(tmp_path / "run"), eval_samples=3,
    )  # fmt: skip
    data = RunData.of(cfg)
    seen = [tuple(b["fg_bg"].shape[-2:]) for b in data.loader(cfg, 0, 0, distributed.setup())]
    assert len(set(seen)) > 1 and set(seen) <= set(batch_shapes(32, 96))
    assert all(s["fg_bg"].shape[-2:] == (96, 96) for s in data.eval_set)


def test_the_trained_range_is_saved_and_grows_over_progressive_stages(tmp_path) -> None:
    common = dict(
        backgrounds=2, foregrounds=2, positions=2, base_width=4, batch_size=2, steps=2, eval_samples=2
    )
    train(TrainConfig(size=64, min_size=32, out_dir=str(tmp_path / "a"), **common))
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["image_size"] == 64 and saved["train_sizes"] == [32, 64]
    train(TrainConfig(size=96, resume=str(tmp_path / "a"), out_dir=str(tmp_path / "b"), **common))
    model = load_model(tmp_path / "b")
    assert model.cfg.image_size == 96 and model.cfg.size_range == (32, 96)  # stage 2 adds its size
    train(TrainConfig(size=64, out_dir=str(tmp_path / "c"), **common))  # one size: as before
    assert "train_sizes" not in json.loads((tmp_path / "c" / "config.json").read_text())


def test_bad_ranges_and_folder_datasets_are_refused_with_the_fix() -> None:
    with pytest.raises(TrainingError, match="min_size must be 0"):
        TrainConfig(size=64, min_size=128, steps=1)
    with pytest.raises(TrainingError, match="only the synthetic generator"):
        TrainConfig(dataset="some/folder", size=128, min_size=64, steps=1)

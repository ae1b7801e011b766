"""Tests for the working-resolution policy and the guided refinement (maskdepth.refine, Predictor)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support.models import tiny_model

from maskdepth.errors import InputError
from maskdepth.predict import RESOLUTIONS, Predictor, resolution_pixels
from maskdepth.refine import NETWORK_MULTIPLE, guided_upsample, pad_to_multiple, working_size


def _pair(w: int, h: int, seed: int = 0) -> tuple[Image.Image, Image.Image, np.ndarray]:
    """A textured background and the same with a flat square pasted in the middle; the true mask."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    fg = bg.copy()
    mask = np.zeros((h, w), bool)
    mask[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
    fg[mask] = (250, 20, 20)
    return Image.fromarray(bg), Image.fromarray(fg), mask


@pytest.mark.parametrize("w,h", [(640, 427), (427, 640), (1000, 250), (250, 1000), (333, 333), (4000, 3000)])
def test_working_size_keeps_the_aspect_ratio_and_the_long_side(w: int, h: int) -> None:
    ww, wh = working_size(w, h, 256, 64)
    assert max(ww, wh) == 256
    assert abs(ww / wh - w / h) < 0.02 * (w / h)


def test_small_photos_are_not_enlarged_beyond_the_trained_size() -> None:
    assert working_size(100, 80, 256, 64) == (100, 80)  # smaller than asked: kept as it is
    assert working_size(8, 8, 256, 64) == (64, 64)  # smaller than the model was trained at: up to that
    assert working_size(40, 10, 256, 64) == (64, 16)
    assert working_size(64, 64, 256, 64) == (64, 64)


@pytest.mark.parametrize("h,w", [(33, 70), (32, 32), (1, 1), (95, 31), (64, 16)])
def test_padding_reaches_a_multiple_of_32_and_replicates_the_edge(h: int, w: int) -> None:
    x = torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w)
    padded, size = pad_to_multiple(x)
    assert size == (h, w)
    assert padded.shape[-2] == math.ceil(h / NETWORK_MULTIPLE) * NETWORK_MULTIPLE
    assert padded.shape[-1] == math.ceil(w / NETWORK_MULTIPLE) * NETWORK_MULTIPLE
    torch.testing.assert_close(padded[..., :h, :w], x)  # cropping the padding off gives the input back
    torch.testing.assert_close(padded[..., -1, :w], x[..., -1, :])  # the padding repeats the last row


@pytest.mark.parametrize("w,h", [(8, 8), (33, 70), (200, 50), (50, 200), (61, 47), (160, 640), (640, 160)])
def test_outputs_are_at_the_photo_size_for_odd_sizes_and_aspect_ratios(w: int, h: int) -> None:
    predictor = Predictor(tiny_model(image_size=32), resolution=64)
    bg, fg, _ = _pair(w, h)
    pred = predictor.predict(fg, bg)
    assert pred.mask.shape == pred.depth.shape == (h, w)
    assert pred.mask.dtype == np.float32 and 0 <= pred.mask.min() and pred.mask.max() <= 1
    ww, wh = pred.working_size
    assert max(ww, wh) == min(64, max(w, h)) if max(w, h) >= 32 else max(ww, wh) == 32


def test_resolution_names_and_numbers() -> None:
    assert resolution_pixels("fast") == RESOLUTIONS["fast"] < resolution_pixels("detailed")
    assert resolution_pixels(None) == resolution_pixels("balanced")
    assert resolution_pixels("320") == 320 == resolution_pixels(320)
    for bad in ("huge", 8, 100_000, "-5"):
        with pytest.raises(InputError, match="resolution"):
            resolution_pixels(bad)


def test_the_model_runs_at_the_requested_resolution() -> None:
    seen: list[tuple[int, ...]] = []
    model = tiny_model(image_size=32)
    model.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape)))
    bg, fg, _ = _pair(640, 427)
    for res, expected in ((64, (64, 43)), (128, (128, 85))):
        pred = Predictor(model, resolution=res, depth_resolution=None).predict(fg, bg)  # one forward
        assert pred.working_size == expected and pred.mask.shape == (427, 640)
        # padded to multiples of 32: (B, 6, H, W)
        assert seen[-1] == (1, 6, math.ceil(expected[1] / 32) * 32, math.ceil(expected[0] / 32) * 32)
    assert Predictor(model).predict(fg, bg, resolution="fast").working_size == (128, 85)


def test_the_depth_can_come_from_a_smaller_whole_scene_view() -> None:
    """depth_resolution: the mask from the working size, the depth from a second, smaller forward."""
    seen: list[tuple[int, ...]] = []
    model = tiny_model(image_size=32)
    model.cfg = dataclasses.replace(model.cfg, train_sizes=(32, 128))  # trained at 32..128 px
    model.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape)))
    bg, fg, _ = _pair(640, 427)
    one = Predictor(model, resolution=256, depth_resolution=None).predict(fg, bg)
    assert len(seen) == 1 and seen[0][-2:] == (192, 256)  # 256x171 padded
    two = Predictor(model, resolution=256, depth_resolution=96).predict(fg, bg)
    assert len(seen) == 3 and seen[1][-2:] == (192, 256) and seen[2][-2:] == (64, 96)  # 96x64
    assert np.array_equal(one.mask, two.mask) and not np.allclose(one.depth, two.depth)
    assert two.depth.shape == (427, 640) and 0 <= two.depth.min() and two.depth.max() <= 1
    Predictor(model, resolution=64, depth_resolution=96).predict(fg, bg)  # already small: one forward
    assert len(seen) == 4


def test_the_depth_view_is_never_larger_than_the_model_trained_at() -> None:
    """A model trained at 64 px only gets its depth from a 64 px view, not from the 128 px default
    (measured: the shipped model's depth δ<1.25 on the app's examples 0.40-0.63 at 128 px, 0.96-0.99 at 64)."""
    single = Predictor(tiny_model(image_size=64), resolution=256)
    assert single.depth_size((256, 171)) == (64, 43)  # long side capped at 64, the aspect kept
    assert single.depth_size((64, 64)) == (64, 64)
    multi = tiny_model(image_size=64)
    multi.cfg = dataclasses.replace(multi.cfg, train_sizes=(96, 160))
    # DEPTH_RESOLUTION lies inside the trained range: it is used as it is
    assert Predictor(multi, resolution=256).depth_size((256, 171)) == (128, 86)
    assert Predictor(multi, resolution=256, depth_resolution=None).depth_size((256, 171)) == (256, 171)


def test_guided_upsampling_puts_the_edge_where_the_guide_has_it() -> None:
    """A square seen at 1/8 size (soft edge pixels), upsampled 8x: guided by the sharp square, the edge is sharp."""
    full = torch.zeros(1, 1, 256, 256)
    full[..., 61:189, 70:203] = 1.0  # not on the 8-pixel grid: the low-res edge pixels are fractional
    low = torch.nn.functional.interpolate(full, size=(32, 32), mode="area")
    out = guided_upsample(low, low, full, eps=1e-3)
    bilinear = torch.nn.functional.interpolate(low, size=(256, 256), mode="bilinear", align_corners=False)

    def soft_fraction(x: torch.Tensor) -> float:  # pixels neither clearly in nor clearly out
        return float(((x > 0.1) & (x < 0.9)).float().mean())

    assert soft_fraction(bilinear) > 0.05 and soft_fraction(out) < 0.005
    assert float((out - full).abs().mean()) < 0.1 * float((bilinear - full).abs().mean())


def test_refinement_sharpens_a_big_photo_and_bilinear_is_the_fallback() -> None:
    """At 8x the working size, the guided mask follows the pasted square better than plain upsampling."""
    bg, fg, truth = _pair(512, 384, seed=3)
    torch.manual_seed(0)
    model = tiny_model(image_size=32)

    def iou_of(refine: bool) -> float:
        pred = Predictor(model, resolution=64, refine=refine).predict(fg, bg)
        assert pred.mask.shape == truth.shape
        # The untrained tiny model's mask is noise; score the mask's edges through its contrast instead:
        # the refined map must change sharply where the photo changes and stay flat elsewhere.
        grad = np.abs(np.diff(pred.mask, axis=1))
        edge = np.abs(np.diff(truth.astype(np.float32), axis=1)) > 0
        return float(grad[edge].mean() / (grad[~edge].mean() + 1e-9))

    assert iou_of(True) > 3 * iou_of(False)


def test_a_seed_checkpoint_predicts_a_non_square_pair_at_its_size(tmp_path: Path) -> None:
    """A seed-format .pt (dict with model_state_dict, no config) predicts through the CLI at the input size."""
    from maskdepth.__main__ import main

    model = tiny_model(image_size=32)
    torch.save({"epoch": 3, "model_state_dict": model.state_dict(), "loss": 0.1}, tmp_path / "seed.pt")
    bg, fg, _ = _pair(150, 100)
    bg.save(tmp_path / "bg.png")
    fg.save(tmp_path / "fg_bg.png")
    args = ["predict", "--model", str(tmp_path / "seed.pt"), "--image", str(tmp_path / "fg_bg.png")]
    assert main([*args, "--bg", str(tmp_path / "bg.png"), "--out", str(tmp_path / "out")]) == 0
    for name in ("mask.png", "depth.png", "depth16.png", "depth_color.png"):
        with Image.open(tmp_path / "out" / name) as img:
            assert img.size == (150, 100), name

"""Tests for maskdepth.data.twoshot: two photos of one scene from one (bg, fg_bg) pair."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from maskdepth.data.twoshot import (
    TwoShot,
    blur,
    camera_shot,
    cast_shadow,
    light_field,
    misalign,
    relight,
    two_shots,
    wall_shadow,
)

H, W = 48, 64


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured background, the same with a red bar standing on the 'floor', and the bar's mask."""
    rng = np.random.default_rng(0)
    bg = np.clip(0.5 + 1.5 * ndimage.gaussian_filter(rng.standard_normal((H, W, 3)), (1.5, 1.5, 0)), 0, 1)
    mask = np.zeros((H, W), np.float32)
    mask[12:36, 28:36] = 1
    fg_bg = bg.copy()
    fg_bg[mask > 0] = [0.9, 0.1, 0.1]
    return bg.astype(np.float32), fg_bg.astype(np.float32), mask


def best_shift(a: np.ndarray, b: np.ndarray, reach: int = 4) -> tuple[int, int]:
    """The integer (dy, dx) that best aligns b onto a (interior only), by brute force."""
    inner = (slice(reach, -reach), slice(reach, -reach))
    errors = {
        (dy, dx): np.abs(a[inner] - np.roll(b, (dy, dx), axis=(0, 1))[inner]).mean()
        for dy in range(-reach, reach + 1)
        for dx in range(-reach, reach + 1)
    }
    return min(errors, key=errors.get)


def test_same_seed_same_pair_and_other_seeds_differ(scene) -> None:
    bg, fg_bg, mask = scene
    a, b = two_shots(bg, fg_bg, 7, mask), two_shots(bg, fg_bg, 7, mask)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    other = two_shots(bg, fg_bg, 8, mask)
    assert not np.array_equal(a[1], other[1])
    for out in a:
        assert out.shape == (H, W, 3) and out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1


def test_accepts_pil_and_uint8_and_refuses_mismatched_sizes(scene) -> None:
    bg, fg_bg, mask = scene
    as_u8 = (bg * 255).astype(np.uint8)
    pil_bg, pil_fg = Image.fromarray(as_u8), Image.fromarray((fg_bg * 255).astype(np.uint8))
    out_pil = two_shots(pil_bg, pil_fg, 3, mask)
    out_u8 = two_shots(as_u8, np.asarray(pil_fg), 3, mask)
    assert all(np.array_equal(x, y) for x, y in zip(out_pil, out_u8, strict=True))
    with pytest.raises(ValueError, match="same size"):
        two_shots(bg, fg_bg[:-1], 0)


def test_shadow_darkens_the_scene_beside_the_object_not_the_object(scene) -> None:
    bg, fg_bg, mask = scene
    for seed in range(6):
        out = cast_shadow(fg_bg, mask, seed, strength=0.5)
        assert np.array_equal(out[mask > 0], fg_bg[mask > 0])  # the object is lit
        darker = (fg_bg - out).max(axis=-1) > 0.02
        assert darker.sum() >= 10 and not (darker & (mask > 0)).any()
        assert np.all(out <= fg_bg + 1e-6)  # a shadow only takes light away
        # It is cast where the object stands: within the object's height of its foot (row 35).
        rows, cols = np.nonzero(darker)
        assert np.abs(rows - 35).max() <= 24 and np.abs(cols - 31.5).max() <= 8 + 24 * 1.2 + 4


def test_wall_shadow_is_the_silhouette_moved_beside_the_object_not_on_it() -> None:
    fg_bg = np.full((128, 128, 3), 0.8, np.float32)
    mask = np.zeros((128, 128), np.float32)
    mask[56:72, 56:72] = 1  # 16 px a side, centre (63.5, 63.5)
    fg_bg[mask > 0] = [0.9, 0.1, 0.1]
    sides, far = set(), 0.0
    for seed in range(16):
        out = wall_shadow(fg_bg, mask, seed, strength=0.5)
        assert np.array_equal(out[mask > 0], fg_bg[mask > 0]) and np.all(out <= fg_bg + 1e-6)
        darker = (fg_bg - out).max(axis=-1) > 0.02
        assert darker.sum() >= 4 and not (darker & (mask > 0)).any()
        # Moved by <= 1.2 x 16 px, scaled <= 1.3 (half-size <= 10.4 + shear 3), blurred (3 sigma <= 4 px).
        rows, cols = np.nonzero(darker)
        reach = np.hypot(rows - 63.5, cols - 63.5).max()
        assert reach <= 19.2 + np.hypot(10.4 + 3, 10.4) + 4
        far = max(far, np.hypot(rows.mean() - 63.5, cols.mean() - 63.5))
        sides.add((rows.mean() < 63.5, cols.mean() < 63.5))
    assert len(sides) >= 3 and far > 8  # directions vary, and some shadows stand well off the object
    assert np.array_equal(wall_shadow(fg_bg, np.zeros_like(mask), 0), fg_bg)


def test_black_edges_only_where_the_moved_background_has_no_pixels(scene) -> None:
    bg = scene[0] * 0.8 + 0.1  # no black pixels of its own
    for seed in range(6):
        repeated = misalign(bg, seed, shift_px=3.0, rotate_deg=0.5)
        black = misalign(bg, seed, shift_px=3.0, rotate_deg=0.5, black_edges=True)
        zero = black.max(axis=-1) == 0
        assert not (repeated.max(axis=-1) == 0).any()
        # Black only in a border strip at most 3 px + the rotation's reach (0.5 deg over 64 px) deep.
        rows, cols = np.nonzero(zero)
        edge_dist = np.minimum.reduce([rows, cols, H - 1 - rows, W - 1 - cols]) if zero.any() else np.zeros(1)
        assert edge_dist.max() <= 3
        assert np.array_equal(black[~zero], repeated[~zero])
    assert any((misalign(bg, s, shift_px=3.0, black_edges=True).max(axis=-1) == 0).any() for s in range(6))


def test_misalignment_stays_within_two_pixels(scene) -> None:
    bg = scene[0]
    assert np.array_equal(misalign(bg, 0, shift_px=0, rotate_deg=0), bg)
    shifts = [best_shift(bg, misalign(bg, seed)) for seed in range(12)]
    assert all(max(abs(dy), abs(dx)) <= 2 for dy, dx in shifts), shifts
    assert any(s != (0, 0) for s in shifts)  # it does move


def test_the_pair_differs_outside_the_object_yet_fg_bg_keeps_its_geometry(scene) -> None:
    bg, fg_bg, mask = scene
    for seed in range(5):
        bg2, fg2 = two_shots(bg, fg_bg, seed, mask)
        outside = ~ndimage.binary_dilation(mask > 0, iterations=3)
        assert (np.abs(bg2 - fg2).max(axis=-1)[outside] > 1 / 255).mean() > 0.5  # two photos, not one
        assert best_shift(fg_bg, fg2) == (0, 0)  # targets follow fg_bg: it is not moved
        dy, dx = best_shift(bg, bg2)  # bg moved by at most ~2 px against fg_bg's geometry
        assert max(abs(dy), abs(dx)) <= 2


def test_camera_shot_stays_a_photo_of_the_same_thing(scene) -> None:
    bg = scene[0]
    shots = [camera_shot(bg, seed) for seed in range(4)]
    for shot in shots:
        assert np.abs(shot - bg).mean() < 0.15
        assert np.corrcoef(shot.ravel(), bg.ravel())[0, 1] > 0.8
    off = TwoShot(exposure=0, white_balance=0, blur=(0, 0), read_noise=(0, 0), shot_noise=(0, 0), jpeg_p=0)
    assert np.abs(camera_shot(bg, 0, off) - bg).max() <= 0.5 / 255 + 1e-6  # only 8-bit rounding left


def test_light_fields_are_smooth_bounded_and_point_every_way() -> None:
    slopes, spreads = [], []
    for seed in range(60):
        gain = light_field((60, 80), seed)
        assert gain.shape == (60, 80) and gain.dtype == np.float32
        assert 0.3 < gain.min() and gain.max() < 3.4  # these seeds (in theory |log gain| <= 0.64 + 3 x 0.45)
        log = np.log(gain)
        assert np.abs(np.diff(log, axis=0)).max() < 0.1 and np.abs(np.diff(log, axis=1)).max() < 0.1  # smooth
        slopes.append(log[-10:].mean() - log[:10].mean())  # brighter at the bottom (> 0) or at the top
        spreads.append(gain.max() / gain.min())
    # Light that ignores depth: as often brighter at the top (far in most scenes) as at the bottom.
    assert sum(s > 0.1 for s in slopes) >= 15 and sum(s < -0.1 for s in slopes) >= 15
    assert np.median(spreads) > 1.5  # most fields change the light by half or more across the image
    np.testing.assert_array_equal(light_field((60, 80), 3), light_field((60, 80), 3))


def test_relight_lights_both_shots_alike(scene) -> None:
    bg, fg_bg, mask = scene
    bg2, fg_bg2 = relight([bg, fg_bg], 5)
    gain = light_field(bg.shape[:2], 5)[..., None]
    np.testing.assert_allclose(bg2, np.clip(bg * gain, 0, 1), atol=1e-6)
    np.testing.assert_allclose(fg_bg2, np.clip(fg_bg * gain, 0, 1), atol=1e-6)
    outside = mask < 0.5  # the pair still differs only at the object
    np.testing.assert_allclose(bg2[outside], fg_bg2[outside], atol=1e-6)


@pytest.mark.parametrize("sigma", [0.5, 1.3, 2.5])
def test_blur_is_a_gaussian(sigma: float) -> None:
    a = np.random.default_rng(1).random((20, 30, 3)).astype(np.float32)
    expected = ndimage.gaussian_filter(a, (sigma, sigma, 0), mode="nearest", truncate=3.0)
    np.testing.assert_allclose(blur(a, sigma), expected, atol=1e-5)
    np.testing.assert_allclose(blur(a[..., 0], sigma), expected[..., 0], atol=1e-5)


def test_the_config_sets_the_two_shot_effects() -> None:
    from maskdepth.data import build_dataset
    from maskdepth.errors import TrainingError
    from maskdepth.training.config import TrainConfig

    data = {"backgrounds": 2, "foregrounds": 2, "positions": 1, "steps": 1, "scene_families": "all"}
    shipped = build_dataset(TrainConfig(**data).data_settings())  # the defaults: the shipped effects
    assert shipped.two_shot == TwoShot()
    assert (TwoShot().wall_shadow_p, TwoShot().black_edge_p) == (pytest.approx(0.4), pytest.approx(0.2))
    assert (TwoShot().camouflage_p, TwoShot().relight_p) == (pytest.approx(0.15), pytest.approx(0.5))
    assert "two shots (wall shadows 0.4, black edges 0.2, camouflage 0.15, relit 0.5)" in shipped.describe()
    plain = build_dataset(TrainConfig(**data, wall_shadows=0, camouflage=0, relight=0).data_settings())
    assert plain.two_shot == dataclasses.replace(TwoShot(), wall_shadow_p=0, camouflage_p=0, relight_p=0)
    assert "wall shadows 0, black edges 0.2, camouflage 0, relit 0" in plain.describe()
    assert build_dataset(TrainConfig(**data, two_shot=False).data_settings()).two_shot is None
    with pytest.raises(TrainingError, match="relight is a share of the samples, 0..1, got 1.5"):
        TrainConfig(**data, relight=1.5)
    handheld = build_dataset(TrainConfig(**data, handheld=0.3).data_settings())
    assert handheld.two_shot == dataclasses.replace(TwoShot(), handheld_p=0.3) and TwoShot().handheld_p == 0
    assert "relit 0.5, handheld 0.3)" in handheld.describe()
    with pytest.raises(TrainingError, match="handheld is a share of the samples"):
        TrainConfig(**data, handheld=-0.1)

"""Tests for maskdepth.align and maskdepth.data.handheld: handheld photo pairs registered back.

The photos are scikit-image's (square and not); the second shots come from ``handheld_shot``,
whose homography is the truth a fit is checked against, at the composite's corners.
"""

from __future__ import annotations

import functools
import json

import cv2
import numpy as np
import pytest
from scipy import ndimage
from skimage import data

from maskdepth.align import Alignment, AlignmentError, fit_alignment
from maskdepth.align.geometry import corner_error, grid_scaling
from maskdepth.data.handheld import handheld_shot
from maskdepth.data.twoshot import camera_shot
from maskdepth.errors import InputError
from maskdepth.imageio import rgb_tile

CORNER_PX = 1.5  # the fit measures ~0.3 px median, ~1 px worst on these photos


@functools.cache
def photo(name: str) -> np.ndarray:
    """(H, W, 3) uint8: astronaut 512x512, coffee 600x400, chelsea 451x300, rocket 640x427 (w x h)."""
    image = getattr(data, name)()
    image.setflags(write=False)
    return image


def paste(image: np.ndarray, other: np.ndarray, box: tuple[float, float, float, float]):
    """``image`` with ``other`` resized into ``box`` (x0, y0, x1, y1 as fractions), and the (H, W) bool mask."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)
    out, mask = image.copy(), np.zeros((h, w), bool)
    out[y0:y1, x0:x1] = cv2.resize(other, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    mask[y0:y1, x0:x1] = True
    return out, mask


@pytest.fixture(scope="module")
def coffee_pair() -> dict:
    """A handheld re-shot of coffee as the background, 30% darker in red; the composite has a cat pasted."""
    shot, truth = handheld_shot(photo("coffee"), 5, photometric=False)
    bg = rgb_tile(shot * np.float32([0.7, 0.85, 1.0]))
    composite, mask = paste(photo("coffee"), photo("chelsea"), (0.35, 0.3, 0.75, 0.75))
    return {
        "bg": bg,
        "composite": composite,
        "mask": mask,
        "truth": truth,
        "fit": fit_alignment(bg, composite),
    }


@pytest.mark.parametrize("name, seed", [("astronaut", 0), ("coffee", 1), ("chelsea", 2), ("rocket", 3)])
def test_handheld_reshot_registers_back(name: str, seed: int) -> None:
    image = photo(name)
    shot, truth = handheld_shot(image, seed)
    composite = rgb_tile(camera_shot(image, seed + 10))  # the composite is a photo with its own look too
    fit = fit_alignment(rgb_tile(shot), composite)
    assert corner_error(fit.homography, truth, image.shape[:2]) < CORNER_PX
    expected = Alignment(truth, image.shape[:2], image.shape[:2])
    assert fit.rotation_deg == pytest.approx(expected.rotation_deg, abs=0.2)
    assert fit.zoom == pytest.approx(expected.zoom, rel=0.01)
    assert np.allclose(fit.shift_px, expected.shift_px, atol=1.0)
    assert not fit.identity and fit.inliers >= 25 and fit.residual_px < 1.5
    assert fit.describe().startswith("aligned: turned ")


def test_pasted_object_is_ignored_and_the_border_filled(coffee_pair: dict) -> None:
    fit, bg, composite, mask = (
        coffee_pair["fit"],
        coffee_pair["bg"],
        coffee_pair["composite"],
        coffee_pair["mask"],
    )
    size = composite.shape[:2]
    assert corner_error(fit.homography, coffee_pair["truth"], size) < CORNER_PX
    expected = Alignment(coffee_pair["truth"], size, size).coverage
    assert 0.6 < expected < 0.95 and fit.coverage == pytest.approx(expected, abs=0.01)
    # The colour match undoes the background's exposure, fitted around the cat.
    assert np.allclose(fit.colour.gain, [1 / 0.7, 1 / 0.85, 1.0], rtol=0.03)
    aligned, covered = fit.warp(bg, fill=composite)
    assert aligned.dtype == np.float32 and covered.shape == size
    assert covered.mean() == pytest.approx(expected, abs=0.01)
    diff = np.abs(aligned - composite / np.float32(255)).mean(-1)
    assert np.median(diff[covered & ~mask]) < 0.02  # the scene lines up
    assert np.median(diff[covered & mask]) > 0.1  # the object stays the difference
    assert np.array_equal(aligned[~covered], composite[~covered] / np.float32(255))


def test_warp_to_a_small_size_matches_the_full_warp_resized(coffee_pair: dict) -> None:
    fit, bg, composite = coffee_pair["fit"], coffee_pair["bg"], coffee_pair["composite"]
    full, full_covered = fit.warp(bg, fill=composite)
    h, w = 100, 150  # a quarter of coffee's 400 x 600
    fill = cv2.resize(composite, (w, h), interpolation=cv2.INTER_AREA)
    reference = cv2.resize(full, (w, h), interpolation=cv2.INTER_AREA)
    small, covered = fit.warp(bg, size=(h, w), fill=fill)
    assert small.shape == (h, w, 3) and covered.shape == (h, w)
    assert np.abs(small - reference).mean() < 0.01
    assert covered.mean() == pytest.approx(full_covered.mean(), abs=0.01)
    half_bg = cv2.resize(bg, (bg.shape[1] // 2, bg.shape[0] // 2), interpolation=cv2.INTER_AREA)
    from_half, _ = fit.warp(half_bg, size=(h, w), fill=fill)  # any scale of the background
    assert np.abs(from_half - reference).mean() < 0.01
    with pytest.raises(InputError, match="resized copy"):
        fit.warp(bg[:, :300])  # not the fitted background's shape


def test_background_of_another_size_lands_on_the_composite_grid() -> None:
    image = photo("rocket")
    shot, truth = handheld_shot(image, 7)
    bg = cv2.resize(rgb_tile(shot), (480, 320), interpolation=cv2.INTER_AREA)  # 640 x 427 -> 480 x 320
    fit = fit_alignment(bg, image)
    assert fit.bg_size == (320, 480) and fit.fg_size == (427, 640)
    expected = truth @ np.linalg.inv(
        grid_scaling(image.shape[:2], bg.shape[:2])
    )  # bg pixels -> shot -> image
    assert corner_error(fit.homography, expected, image.shape[:2]) < CORNER_PX
    assert fit.zoom == pytest.approx(Alignment(truth, image.shape[:2], image.shape[:2]).zoom, rel=0.01)
    aligned, covered = fit.warp(bg, fill=image)
    assert aligned.shape == image.shape and covered.shape == image.shape[:2]


def test_identical_pair_and_exact_paste_keep_the_background_bit_identical() -> None:
    image = photo("astronaut")
    exact = image.astype(np.float32) / 255
    fit = fit_alignment(image, image)
    assert fit.identity and fit.matches == 0  # no features were matched
    assert fit.describe() == "pixel-identical pair: no alignment needed"
    aligned, covered = fit.warp(image)
    assert aligned.dtype == np.float32 and np.array_equal(aligned, exact) and covered.all()
    composite, _ = paste(image, photo("coffee"), (0.1, 0.5, 0.5, 0.9))
    fit = fit_alignment(image, composite)
    assert fit.identity and np.array_equal(fit.warp(image, fill=composite)[0], exact)
    assert np.array_equal(fit_alignment(exact, composite / np.float32(255)).warp(exact)[0], exact)


def test_same_view_with_new_colours_is_not_warped() -> None:
    image = photo("chelsea")
    rng = np.random.default_rng(
        4
    )  # a tripod: exposure, white balance and sensor noise change, the view does not
    bg = rgb_tile(image / np.float32(255) * np.float32([0.8, 0.9, 1.05]) + rng.normal(0, 0.005, image.shape))
    fit = fit_alignment(bg, image)
    assert fit.still and not fit.identity
    assert np.array_equal(fit.homography, grid_scaling(image.shape[:2], image.shape[:2]))
    assert fit.describe().startswith("already aligned")
    aligned, covered = fit.warp(bg)
    assert covered.all() and np.array_equal(aligned, fit.colour.apply(bg, 255))  # colours only, no resampling
    assert np.abs(aligned - image / np.float32(255)).mean() < 0.01


@pytest.mark.parametrize("bg_name, fg_name", [("astronaut", "coffee"), ("rocket", "chelsea")])
def test_different_photos_are_refused_with_the_fix(bg_name: str, fg_name: str) -> None:
    with pytest.raises(
        AlignmentError, match="shoot the background again from where the composite was taken"
    ) as info:
        fit_alignment(photo(bg_name), photo(fg_name))
    assert isinstance(info.value, InputError) and "do not seem to show the same scene" in str(info.value)


def test_a_fit_no_handheld_shot_gives_is_refused_with_its_numbers() -> None:
    image = photo("astronaut")
    turn = cv2.getRotationMatrix2D(
        (255.5, 255.5), 35, 0.9
    )  # 35° and a zoom: not a re-shot from the same spot
    turned = cv2.warpAffine(image, turn, (512, 512), borderMode=cv2.BORDER_REFLECT)
    with pytest.raises(AlignmentError, match=r"turned -?35\.\d°"):
        fit_alignment(turned, image)


def test_bad_inputs_name_the_fix() -> None:
    with pytest.raises(InputError, match="RGB image"):
        fit_alignment(photo("astronaut")[..., 0], photo("astronaut"))
    with pytest.raises(InputError, match="uint8 or float"):
        fit_alignment(photo("astronaut").astype(np.int32), photo("astronaut"))


def test_to_dict_is_json(coffee_pair: dict) -> None:
    record = json.loads(json.dumps(coffee_pair["fit"].to_dict()))
    assert record["description"] == coffee_pair["fit"].describe()
    assert np.allclose(record["homography"], coffee_pair["fit"].homography)
    assert {"rotation_deg", "shift_px", "zoom", "coverage", "colour", "residual_px", "identity"} <= set(
        record
    )


def test_handheld_shot_is_a_moved_view_inside_the_photo() -> None:
    image = photo("chelsea")
    shot, homography = handheld_shot(image, 3, photometric=False)
    assert shot.shape == image.shape and shot.dtype == np.float32
    h, w = image.shape[:2]
    # Checked against scipy's own bilinear sampling of the photo at the homography, away from the edge.
    ys, xs = np.mgrid[10 : h - 10 : 7, 10 : w - 10 : 7].reshape(2, -1)
    mapped = np.c_[xs, ys, np.ones_like(xs)] @ homography.T
    px, py = mapped[:, 0] / mapped[:, 2], mapped[:, 1] / mapped[:, 2]
    assert px.min() > -0.5 and px.max() < w - 0.5 and py.min() > -0.5 and py.max() < h - 0.5
    for c in range(3):
        sampled = ndimage.map_coordinates(image[..., c] / 255, [py, px], order=1)
        assert np.abs(sampled - shot[ys, xs, c]).max() < 0.01
    motion = Alignment(homography, (h, w), (h, w))
    assert abs(motion.rotation_deg) <= 3 and motion.coverage < 1 and motion.keystone < 1.1
    again, same = handheld_shot(image, 3)  # same seed: same view, with the camera's own look
    assert np.array_equal(same, homography) and not np.array_equal(again, shot)


def test_a_handheld_training_background_is_registered_back_within_a_pixel_or_so() -> None:
    """registered_shot at a training sample's size: the shot lands on the composite's grid as the truth
    says, the border it does not cover is the composite's, and a plain render is left to the caller."""
    from maskdepth.data.handheld import registered_shot

    image = cv2.resize(photo("astronaut"), (128, 128), interpolation=cv2.INTER_AREA)
    composite = image.copy()
    composite[64:115, 51:77] = [200, 40, 40]  # a plain bar pasted in
    composite = camera_shot(composite, 1)
    shots = [registered_shot(image.astype(np.float32) / 255, composite, seed) for seed in range(1, 5)]
    hits = [r for r in shots if r is not None]
    assert len(hits) >= 3
    h, w = composite.shape[:2]
    centres = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).reshape(-1, 2).astype(np.float64)
    for r in hits:
        # Where each composite pixel's scene point really is: fit back to the shot, truth on to the photo.
        back = cv2.perspectiveTransform(centres[None], r.motion @ np.linalg.inv(r.alignment.homography))[0]
        error = np.linalg.norm(back - centres, axis=1).reshape(h, w)
        assert error[r.covered].max() < CORNER_PX
        assert r.bg.shape == composite.shape and r.bg.dtype == np.float32 and 0.5 < r.covered.mean() < 1
        assert np.array_equal(r.bg[~r.covered], composite[~r.covered])
    assert registered_shot(np.full((128, 128, 3), 0.5, np.float32), composite, 0) is None  # nothing to match

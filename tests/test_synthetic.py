"""Tests for maskdepth.data.synthetic: determinism, the sample format, geometry and the depth convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from maskdepth.data import DEPTH_CONVENTION, Z_REF
from maskdepth.data.geometry import downsample
from maskdepth.data.synthetic import SUPERSAMPLE, SyntheticScenes, depth_from_z, render_background
from maskdepth.data.textures import TEXTURE_SIZE, texture_pool

SIZE = 32


@pytest.fixture(scope="module")
def scenes() -> SyntheticScenes:
    return SyntheticScenes(2, 2, 2, size=SIZE)


@pytest.fixture(scope="module")
def samples(scenes: SyntheticScenes) -> list[dict[str, torch.Tensor]]:
    return [scenes[i] for i in range(len(scenes))]


def mask_of(sample: dict[str, torch.Tensor]) -> np.ndarray:
    return sample["mask"][0].numpy() > 0.5


def test_samples_are_a_pure_function_of_seed_and_index(samples: list[dict[str, torch.Tensor]]) -> None:
    backwards = SyntheticScenes(2, 2, 2, size=SIZE)  # a fresh instance, read in another order
    for i in reversed(range(len(backwards))):
        again = backwards[i]
        for key in ("bg", "fg_bg", "mask", "depth"):
            assert torch.equal(again[key], samples[i][key]), (i, key)
    other_seed = SyntheticScenes(2, 2, 2, size=SIZE, seed=1)[0]
    assert not torch.equal(other_seed["fg_bg"], samples[0]["fg_bg"])


def test_sample_format(samples: list[dict[str, torch.Tensor]]) -> None:
    for s in samples:
        assert set(s) == {"bg", "fg_bg", "mask", "depth"}
        assert s["bg"].shape == s["fg_bg"].shape == (3, SIZE, SIZE)
        assert s["mask"].shape == s["depth"].shape == (1, SIZE, SIZE)
        for key, value in s.items():
            assert value.dtype == torch.float32, key
            assert value.min() >= 0 and value.max() <= 1, key
        assert set(s["mask"].unique().tolist()) <= {0.0, 1.0}
        assert 0 < s["mask"].sum() < SIZE * SIZE / 2  # an object is visible and does not fill the frame
        assert s["depth"].min() > 0  # every pixel sees a surface (rooms are closed)
        assert s["bg"].std() > 0.02  # textured, not flat


def test_len_follows_the_seed_recipe() -> None:
    assert len(SyntheticScenes(3, 4, 5)) == 3 * 4 * 5 * 2
    assert len(SyntheticScenes(3, 4, 5, flips=False)) == 3 * 4 * 5
    assert len(SyntheticScenes()) == 400_000  # the seed's 100 x 100 x 20 x 2
    with pytest.raises(IndexError):
        SyntheticScenes(1, 1, 1)[2]


@pytest.mark.parametrize("kwargs", [{"backgrounds": 0}, {"positions": 0}, {"size": 16}])
def test_bad_arguments_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SyntheticScenes(**{"backgrounds": 2, "foregrounds": 2, "positions": 2, **kwargs})


def test_background_index_groups_samples_like_the_seed(scenes: SyntheticScenes, samples: list) -> None:
    per_background = scenes.foregrounds * scenes.positions * scenes.flips
    assert [scenes.background_index(i) for i in range(len(scenes))] == [
        i // per_background for i in range(len(scenes))
    ]
    for i, s in enumerate(samples):
        first = samples[scenes.background_index(i) * per_background]
        assert torch.equal(s["bg"], first["bg"])
    assert not torch.equal(samples[0]["bg"], samples[per_background]["bg"])
    assert "16 samples" in scenes.describe()


def test_depth_convention_is_inverse_distance_with_near_one() -> None:
    assert "near = 1" in DEPTH_CONVENTION
    z = np.array([0.5, Z_REF, 2.0, 4.0, 1e9], np.float32)
    np.testing.assert_allclose(depth_from_z(z), [1.0, 1.0, 0.5, 0.25, 1e-9], rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("index", [0, 1])
def test_floor_depth_grows_towards_the_bottom_of_the_image(
    scenes: SyntheticScenes, samples: list, index: int
) -> None:
    """Near = 1: the floor at the bottom of the image is nearer (higher) than the far walls at the top."""
    room = render_background(scenes.seed, index, SIZE)
    k = SUPERSAMPLE
    floor = room.floor.reshape(SIZE, k, SIZE, k).all(axis=(1, 3))  # pixels that are all floor
    s = samples[index * scenes.foregrounds * scenes.positions * scenes.flips]
    depth = s["depth"][0].numpy()
    usable = ~ndimage.binary_dilation(mask_of(s), iterations=1)  # away from the pasted object
    rows = [v for v in range(SIZE) if (floor[v] & usable[v]).sum() >= 3]
    assert len(rows) >= 8 and rows[-1] == SIZE - 1
    row_depth = []
    for v in rows:
        values = depth[v][floor[v] & usable[v]]
        assert np.ptp(values) < 1e-4  # a flat floor seen without roll: depth depends on the row only
        row_depth.append(values.mean())
    assert np.all(np.diff(row_depth) > 0)  # each row down is nearer
    assert row_depth[-1] > depth[0].max() + 0.1  # the bottom of the floor vs the top of the image (far walls)


def test_objects_stand_on_the_floor_at_its_depth(samples: list) -> None:
    """An object's depth is the floor's depth where it stands (plus its bulge towards the camera)."""
    checked = 0
    for s in samples:
        mask, depth = mask_of(s), s["depth"][0].numpy()
        foot = np.nonzero(mask.any(axis=1))[0].max()  # lowest row of the object
        inner = ndimage.binary_erosion(mask)  # anti-aliased edges blend with what is behind
        beside = ~ndimage.binary_dilation(mask, iterations=1)[foot]
        if not inner.any() or not beside.any():
            continue
        floor_at_foot = np.median(depth[foot][beside])
        ratio = np.median(depth[inner]) / floor_at_foot
        assert 0.95 < ratio < 1.6, ratio
        checked += 1
    assert checked >= len(samples) // 2


def test_objects_standing_lower_in_the_image_are_nearer() -> None:
    """Same room, same object, eight positions: a lower foot row means a higher (nearer) depth."""
    positions = 8
    ds = SyntheticScenes(1, 2, positions, flips=False, size=SIZE)
    compared = 0
    for f in range(2):
        feet, depths = [], []
        for p in range(positions):
            s = ds[f * positions + p]
            mask = mask_of(s)
            inner = ndimage.binary_erosion(mask)
            feet.append(np.nonzero(mask.any(axis=1))[0].max())
            depths.append(float(np.median(s["depth"][0].numpy()[inner if inner.any() else mask])))
        for a in range(positions):
            for b in range(positions):
                if feet[a] >= feet[b] + 2:  # a stands clearly lower than b
                    assert depths[a] > depths[b], (f, feet, depths)
                    compared += 1
    assert compared >= 3


def test_bg_and_fg_bg_differ_only_where_the_object_is(samples: list) -> None:
    for s in samples:
        mask = mask_of(s)
        diff = (s["bg"] - s["fg_bg"]).abs().amax(dim=0).numpy()
        near_object = ndimage.binary_dilation(mask, iterations=1)  # anti-aliased edge
        assert diff[~near_object].max() == 0
        assert (diff[mask] > 0).mean() > 0.9  # the object covers the background it stands on


def test_flipped_pairs_mirror_the_same_object_at_the_same_place(samples: list) -> None:
    for k in range(len(samples) // 2):
        a, b = mask_of(samples[2 * k]), mask_of(samples[2 * k + 1])
        assert torch.equal(samples[2 * k]["bg"], samples[2 * k + 1]["bg"])
        assert abs(int(a.sum()) - int(b.sum())) <= 0.1 * a.sum() + 2
        rows_a, rows_b = np.nonzero(a.any(axis=1))[0], np.nonzero(b.any(axis=1))[0]
        cols_a, cols_b = np.nonzero(a.any(axis=0))[0], np.nonzero(b.any(axis=0))[0]
        assert abs(rows_a.min() - rows_b.min()) <= 1 and abs(rows_a.max() - rows_b.max()) <= 1
        assert abs(cols_a.min() - cols_b.min()) <= 1 and abs(cols_a.max() - cols_b.max()) <= 1
        if cols_a.min() > 0 and cols_a.max() < SIZE - 1:  # not cut by the image border
            # Mirror a's shape within its box and compare with b's, allowing one pixel of shift.
            top, bottom = min(rows_a.min(), rows_b.min()), max(rows_a.max(), rows_b.max()) + 1
            left, right = min(cols_a.min(), cols_b.min()), max(cols_a.max(), cols_b.max()) + 1
            mirrored = a[top:bottom, left:right][:, ::-1]
            box_b = b[top:bottom, left:right]
            best = max(
                (np.roll(mirrored, dx, axis=1) & box_b).sum() / (np.roll(mirrored, dx, axis=1) | box_b).sum()
                for dx in (-1, 0, 1)
            )
            assert best > 0.6, (k, best)


def test_texture_pool_is_deterministic() -> None:
    pool = texture_pool(0)
    assert pool.shape[1:] == (TEXTURE_SIZE, TEXTURE_SIZE, 3) and pool.dtype == np.float32
    assert pool.min() >= 0 and pool.max() <= 1
    build = texture_pool.__wrapped__  # bypass the cache: rebuild from scratch
    first, again, other = build(3, count=6), build(3, count=6), build(4, count=6)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_fifty_samples_generate() -> None:
    ds = SyntheticScenes(3, 3, 3, size=SIZE, seed=5)
    batch = [ds[i] for i in range(50)]
    assert all(torch.isfinite(s["fg_bg"]).all() and s["mask"].sum() > 0 for s in batch)


def test_rooms_render_at_non_square_sizes() -> None:
    ds = SyntheticScenes(2, 2, 1, size=(32, 48))
    s = ds[3]
    assert s["bg"].shape == (3, 32, 48) and s["mask"].shape == s["depth"].shape == (1, 32, 48)
    assert 0 < s["mask"].sum() < 32 * 48 / 2 and s["depth"].min() > 0
    assert ds.describe().endswith("at 32x48")


def test_downsample_averages_blocks() -> None:
    a = np.random.default_rng(0).random((8, 12, 3)).astype(np.float32)
    for arr in (a, a[..., 0]):
        for k in (2, 4):
            expected = arr.reshape(8 // k, k, 12 // k, k, *arr.shape[2:]).mean(axis=(1, 3))
            np.testing.assert_allclose(downsample(arr, k), expected, rtol=1e-6)

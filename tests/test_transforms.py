"""Tests for maskdepth.data.transforms: model input, joint augmentation, the seeded split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from maskdepth.data.transforms import Augmented, JointAugment, model_input, split_dataset

H = W = 32


def test_model_input_puts_bg_first_and_scales_to_minus_one_one() -> None:
    bg = torch.zeros(2, 3, H, W)
    fg_bg = torch.ones(2, 3, H, W)
    x = model_input(bg, fg_bg, 6)
    assert x.shape == (2, 6, H, W)
    assert torch.all(x[:, :3] == -1) and torch.all(x[:, 3:] == 1)
    assert torch.all(model_input(bg + 0.5, fg_bg, 6)[:, :3] == 0)


def test_model_input_three_channels_is_fg_bg_alone() -> None:
    bg = torch.rand(1, 3, H, W)
    fg_bg = torch.rand(1, 3, H, W)
    x = model_input(bg, fg_bg, 3)
    assert x.shape == (1, 3, H, W)
    torch.testing.assert_close(x, fg_bg * 2 - 1)
    torch.testing.assert_close(model_input(None, fg_bg, 3), x)


def test_model_input_errors() -> None:
    fg_bg = torch.rand(1, 3, H, W)
    with pytest.raises(ValueError, match="background"):
        model_input(None, fg_bg, 6)
    with pytest.raises(ValueError, match="6 or 3"):
        model_input(fg_bg, fg_bg, 4)


def pasted_sample() -> dict[str, torch.Tensor]:
    """A sample whose mask is exactly where fg_bg differs from bg, and whose depth is 0.3 + 0.5 * mask."""
    g = torch.Generator().manual_seed(0)
    bg = 0.1 + 0.25 * torch.rand(3, H, W, generator=g)
    mask = torch.zeros(1, H, W)
    mask[:, 8:22, 10:25] = 1
    mask[:, 4:8, 12:14] = 1  # an asymmetric part, so a flip shows
    colour = torch.tensor([0.85, 0.3, 0.6]).view(3, 1, 1).expand(3, H, W)
    fg_bg = torch.where(mask.bool(), colour, bg)
    return {"bg": bg, "fg_bg": fg_bg, "mask": mask, "depth": 0.3 + 0.5 * mask}


def test_joint_augment_keeps_inputs_and_targets_aligned() -> None:
    sample = pasted_sample()
    augment = JointAugment(noise=0.0, flip=0.5, crop_prob=0.5)
    moved = 0
    for seed in range(12):
        out = augment(sample, generator=torch.Generator().manual_seed(seed))
        assert {k: tuple(v.shape) for k, v in out.items()} == {k: tuple(v.shape) for k, v in sample.items()}
        mask = out["mask"][0].numpy()
        assert set(np.unique(mask)) <= {0.0, 1.0} and mask.sum() > 0
        on = mask > 0.5
        moved += not np.array_equal(mask, sample["mask"][0].numpy())

        diff = (out["bg"] - out["fg_bg"]).abs().amax(dim=0).numpy()
        # Same photometric change for both photos: away from the object they stay identical.
        # (A crop is resized up by at most 1/0.7, so interpolation blurs the edge by < 2 pixels.)
        assert diff[~ndimage.binary_dilation(on, iterations=2)].max() < 1e-6, seed
        assert diff[ndimage.binary_erosion(on)].min() > 0.1, seed
        # Depth moved with the mask: it is 0.3 + 0.5 * (interpolated mask), and mask = (that >= 0.5).
        depth = out["depth"][0].numpy()
        assert np.all(depth[on] >= 0.55 - 1e-6) and np.all(depth[~on] < 0.55 + 1e-6), seed
        for key in ("bg", "fg_bg", "depth"):
            assert out[key].min() >= 0 and out[key].max() <= 1
    assert moved >= 3  # flips and crops did happen


def test_joint_augment_changes_only_the_inputs_photometrically() -> None:
    sample = pasted_sample()
    augment = JointAugment(flip=0.0, crop_prob=0.0, noise=0.0)
    out = augment(sample, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out["mask"], sample["mask"])
    assert torch.equal(out["depth"], sample["depth"])
    assert not torch.allclose(out["bg"], sample["bg"])


def test_joint_augment_is_reproducible() -> None:
    sample = pasted_sample()
    augment = JointAugment()
    a = augment(sample, generator=torch.Generator().manual_seed(7))
    b = augment(sample, generator=torch.Generator().manual_seed(7))
    c = augment(sample, generator=torch.Generator().manual_seed(8))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["fg_bg"], c["fg_bg"])


def test_noise_is_independent_per_photo() -> None:
    sample = pasted_sample()
    out = JointAugment(flip=0.0, crop_prob=0.0, noise=0.05)(
        sample, generator=torch.Generator().manual_seed(1)
    )
    outside = sample["mask"][0] == 0
    assert (out["bg"] - out["fg_bg"]).abs()[:, outside].max() > 0  # the two photos never match bit for bit


def test_augmented_dataset_is_seeded_per_epoch_and_index() -> None:
    data = [pasted_sample() for _ in range(3)]
    a, b = Augmented(data, JointAugment(), seed=1), Augmented(data, JointAugment(), seed=1)
    assert len(a) == 3
    assert all(torch.equal(a[1][k], b[1][k]) for k in ("bg", "fg_bg", "mask", "depth"))
    first = a[1]["fg_bg"]
    a.epoch = 1
    assert not torch.equal(a[1]["fg_bg"], first)


def test_split_is_seeded_disjoint_complete_and_70_30() -> None:
    data = list(range(100))
    train, test = split_dataset(data)
    assert (len(train), len(test)) == (70, 30)
    assert set(train.indices).isdisjoint(test.indices)
    assert sorted([*train.indices, *test.indices]) == data
    assert [train[i] for i in range(3)] == [data[j] for j in train.indices[:3]]

    again_train, again_test = split_dataset(data, seed=0)
    assert list(again_train.indices) == list(train.indices)
    other_train, _ = split_dataset(data, seed=1)
    assert list(other_train.indices) != list(train.indices)

    small_train, small_test = split_dataset(list(range(10)), test_fraction=0.2, seed=3)
    assert (len(small_train), len(small_test)) == (8, 2)


@pytest.mark.parametrize(("n", "fraction"), [(10, 0.0), (10, 1.0), (1, 0.3)])
def test_split_refuses_what_it_cannot_split(n: int, fraction: float) -> None:
    with pytest.raises(ValueError):
        split_dataset(list(range(n)), test_fraction=fraction)

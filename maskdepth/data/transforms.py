"""Model input, joint augmentation and the seeded train/test split.

The seed wanted augmentation but could not keep the input and targets aligned, so it only
considered photometric changes. Here one geometric draw (a flip; optionally a crop-and-resize) moves all
four maps together, and photometric changes touch the two input images only, with the
same factors for both (they show the same scene).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset
from torchvision.transforms.v2 import functional as TF

INPUT_MEAN = 0.5  # inputs are scaled from [0, 1] to [-1, 1]
INPUT_STD = 0.5


def model_input(bg: torch.Tensor | None, fg_bg: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Normalise and stack the images for the W-Net: (B, 3, H, W) x 2 -> (B, in_channels, H, W).

    6 channels = ``cat([bg, fg_bg])`` (the seed's order); 3 channels = ``fg_bg`` alone.
    """
    if in_channels == 6:
        if bg is None:
            raise ValueError("this model needs the background image as well (6 input channels)")
        x = torch.cat([bg, fg_bg], dim=1)
    elif in_channels == 3:
        x = fg_bg
    else:
        raise ValueError(f"in_channels must be 6 or 3, got {in_channels}")
    return (x - INPUT_MEAN) / INPUT_STD


@dataclass
class JointAugment:
    """Random flip (+ optional crop-and-resize) on all maps, colour jitter (+ noise) on the inputs only.

    Works on one sample dict (tensors (C, H, W)); ``generator`` makes it reproducible.
    """

    flip: float = 0.5
    crop_scale: tuple[float, float] = (0.7, 1.0)
    # Off by default: a crop resized back up is a zoom, which makes everything look nearer while
    # the depth values stay the same. Measured: with crop_prob 0.5 the default W-Net under-read
    # wall depth by ~14% (delta<1.25 stuck at 0.86). Zoom is only safe for the mask head.
    crop_prob: float = 0.0
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.3
    hue: float = 0.03
    noise: float = 0.02

    def __call__(self, sample: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> dict:
        def rand() -> float:
            return float(torch.rand((), generator=generator))

        keys = ("bg", "fg_bg", "mask", "depth")
        stacked = torch.cat([sample[k] for k in keys], dim=0)  # (8, H, W): one draw moves all
        h, w = stacked.shape[-2:]
        if rand() < self.flip:
            stacked = stacked.flip(-1)
        if rand() < self.crop_prob:
            scale = self.crop_scale[0] + (self.crop_scale[1] - self.crop_scale[0]) * rand()
            ch, cw = max(8, round(h * scale)), max(8, round(w * scale))
            top, left = round((h - ch) * rand()), round((w - cw) * rand())
            crop = stacked[:, top : top + ch, left : left + cw]
            stacked = F.interpolate(crop[None], size=(h, w), mode="bilinear", align_corners=False)[0]
        bg, fg_bg, mask, depth = stacked[0:3], stacked[3:6], stacked[6:7], stacked[7:8]
        mask = (mask >= 0.5).float()  # interpolation blurs the binary target; re-binarise

        # Photometric: same factors for bg and fg_bg, since they are the same photo.
        b = 1 + self.brightness * (2 * rand() - 1)
        c = 1 + self.contrast * (2 * rand() - 1)
        s = 1 + self.saturation * (2 * rand() - 1)
        hshift = self.hue * (2 * rand() - 1)
        images = torch.stack([bg, fg_bg])
        images = TF.adjust_brightness(images, b)
        # Contrast about the background's mean grey for both: TF.adjust_contrast uses each image's
        # own mean, which would shift every background pixel of fg_bg away from bg.
        grey_mean = TF.rgb_to_grayscale(images[0]).mean()
        images = (c * images + (1 - c) * grey_mean).clamp(0, 1)
        images = TF.adjust_saturation(images, s)
        if hshift:
            images = TF.adjust_hue(images, hshift)
        if self.noise:
            # Independent sensor noise / re-encoding: the two photos never match bit for bit.
            images = images + self.noise * rand() * torch.randn(images.shape, generator=generator)
        images = images.clamp(0, 1)
        return {"bg": images[0], "fg_bg": images[1], "mask": mask, "depth": depth.clamp(0, 1)}


class Augmented(Dataset):
    """Wraps a dataset of sample dicts and applies a transform, seeded per (epoch, index)."""

    def __init__(self, dataset: Dataset, transform: JointAugment, seed: int = 0):
        self.dataset, self.transform, self.seed = dataset, transform, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(hash((self.seed, self.epoch, i)) & 0x7FFF_FFFF)
        return self.transform(self.dataset[i], generator=g)


def split_dataset(dataset: Dataset, test_fraction: float = 0.3, seed: int = 0) -> tuple[Subset, Subset]:
    """Seeded random train/test split (the seed's 70:30 by default)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    n = len(dataset)
    n_test = max(1, round(n * test_fraction))
    if n - n_test < 1:
        raise ValueError(f"a dataset of {n} samples is too small to split; give it at least 2 samples")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, sorted(perm[n_test:])), Subset(dataset, sorted(perm[:n_test]))

"""The embedded dataset: procedural rooms with objects pasted in, following the seed's recipe.

The seed pasted each of 100 foreground cut-outs on each of 100 backgrounds at 20 random
positions, and again horizontally flipped (100 x 100 x 20 x 2 = 400,000 samples). We do
the same with generated scenes, so every sample has an exact mask and an exact depth map:

- a background is a room seen by a pinhole camera (floor, back wall, side walls, ceiling
  and a few boxes standing on the floor), each surface textured in perspective and lit
  by a point light; its depth follows from the geometry;
- a foreground is a textured, shaded cut-out (blob, vase, figure, box, star, critter)
  with a height in metres; it stands upright on the floor at a sampled position, so it
  is scaled by perspective and its depth is set by where it stands (plus a small bulge).

Sample ``i`` is a pure function of (seed, i): the same on every machine.
Depth convention: see :data:`DEPTH_CONVENTION`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from maskdepth.data.families.room import render_background
from maskdepth.data.geometry import (
    DEPTH_CONVENTION,
    SUPERSAMPLE,
    Z_REF,
    Background,
    depth_from_z,
    downsample,
)
from maskdepth.data.objects import SHAPE_KINDS, Foreground, make_foreground, place, project

__all__ = [
    "DEPTH_CONVENTION",
    "SHAPE_KINDS",
    "SUPERSAMPLE",
    "Z_REF",
    "Background",
    "SyntheticScenes",
    "composite",
    "depth_from_z",
    "make_foreground",
    "render_background",
]


def composite(bg: Background, fg: Foreground, rng: np.random.Generator, flip: bool) -> dict[str, np.ndarray]:
    """Paste ``fg`` into ``bg`` standing on the floor; returns fg_bg, mask (alpha) and depth at S x S."""
    obj = project(bg, fg, place(bg, fg, rng), flip)
    fg_bg = bg.rgb.copy()
    mask = np.zeros(bg.z.shape, np.float32)
    z = bg.z.copy()
    alpha = obj.alpha
    fg_bg[obj.region][alpha] = obj.colour[alpha]
    mask[obj.region][alpha] = 1.0
    z[obj.region][alpha] = np.minimum(z[obj.region][alpha], obj.z[alpha])
    return {"fg_bg": fg_bg, "mask": mask, "z": z}


class SyntheticScenes(Dataset):
    """The seed's recipe on generated scenes: backgrounds x foregrounds x positions x flips.

    Sample order follows the seed: all samples of one background are contiguous
    (``background_index(i)``), then foreground, position and flip.

    Each item is the sample dict: ``bg``, ``fg_bg`` (3, size, size), ``mask``, ``depth``
    (1, size, size), float32 in [0, 1].
    """

    def __init__(
        self,
        backgrounds: int = 100,
        foregrounds: int = 100,
        positions: int = 20,
        flips: bool = True,
        size: int = 64,
        seed: int = 0,
    ):
        if min(backgrounds, foregrounds, positions) < 1:
            raise ValueError("backgrounds, foregrounds and positions must each be >= 1")
        if size < 32:
            raise ValueError(f"size must be >= 32 (the W-Net pools five times), got {size}")
        self.backgrounds, self.foregrounds, self.positions = backgrounds, foregrounds, positions
        self.flips = 2 if flips else 1
        self.size, self.seed = size, seed
        self._bg_cache: dict[int, Background] = {}

    def __len__(self) -> int:
        return self.backgrounds * self.foregrounds * self.positions * self.flips

    def describe(self) -> str:
        """One line for model cards and logs."""
        return (
            f"maskdepth synthetic scenes (seed {self.seed}): {self.backgrounds} rooms x {self.foregrounds} "
            f"objects x {self.positions} positions x {self.flips} flips = {len(self)} samples at "
            f"{self.size}x{self.size}"
        )

    def background_index(self, i: int) -> int:
        """Which background sample ``i`` uses."""
        return i // (self.foregrounds * self.positions * self.flips)

    def _background(self, b: int) -> Background:
        bg = self._bg_cache.get(b)
        if bg is None:
            if len(self._bg_cache) >= 256:  # bound memory for large datasets
                self._bg_cache.pop(next(iter(self._bg_cache)))
            bg = self._bg_cache[b] = render_background(self.seed, b, self.size)
        return bg

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} out of range for {len(self)} samples")
        rest, flip = divmod(i, self.flips)
        rest, pos = divmod(rest, self.positions)
        b, f = divmod(rest, self.foregrounds)
        bg = self._background(b)
        fg = make_foreground(self.seed, f)
        rng = np.random.default_rng([self.seed, 3, b, f, pos])
        comp = composite(bg, fg, rng, flip=bool(flip))
        k = SUPERSAMPLE
        mask = (downsample(comp["mask"], k) >= 0.5).astype(np.float32)
        # Average inverse depth (the stored quantity), not z, so edges blend like the images.
        depth = downsample(depth_from_z(comp["z"]), k)
        return {
            "bg": torch.from_numpy(downsample(bg.rgb, k)).permute(2, 0, 1).contiguous(),
            "fg_bg": torch.from_numpy(downsample(comp["fg_bg"], k)).permute(2, 0, 1).contiguous(),
            "mask": torch.from_numpy(mask)[None],
            "depth": torch.from_numpy(depth)[None],
        }

"""Matching the background's colours to the composite's: a per-channel gain and offset fitted robustly."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from maskdepth.align.geometry import area_reduce, covered_by

COLOUR_SIDE = 128  # long side of the copies the colour match is fitted on (~12k pixels)


@dataclass(frozen=True)
class ColourMatch:
    """``gain * colour + offset`` per channel, taking the warped background's colours to the composite's.

    That is what an exposure and white-balance change do to a JPEG to first order; a 3x3 matrix
    would also bend towards whatever object pixels the trimming lets through.
    """

    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def is_identity(self) -> bool:
        """Within half a grey level of no change over 0..1."""
        return all(abs(g - 1) + abs(o) < 0.5 / 255 for g, o in zip(self.gain, self.offset, strict=True))

    def apply(self, image: np.ndarray, peak: float = 1.0) -> np.ndarray:
        """(H, W, 3) float32: ``image / peak`` matched and clipped to [0, 1] (peak 255 for uint8)."""
        gain = np.asarray(self.gain, np.float32) / np.float32(peak)
        return np.clip(image * gain + np.asarray(self.offset, np.float32), 0, 1, dtype=np.float32)

    def grey_table(self) -> np.ndarray:
        """(256,) uint8: the match on grey levels, with the channels' gains and offsets weighted as luma is."""
        weights = np.array([0.299, 0.587, 0.114], np.float32)
        gain, offset = float(weights @ np.asarray(self.gain)), float(weights @ np.asarray(self.offset))
        return np.clip(np.arange(256, dtype=np.float32) * gain + offset * 255 + 0.5, 0, 255).astype(np.uint8)

    def table(self) -> np.ndarray:
        """(256, 1, 3) uint8: :meth:`apply` for every level of a uint8 image, for cv2.LUT (~10x faster)."""
        levels = np.repeat(np.arange(256, dtype=np.float32)[:, None, None], 3, axis=2)
        return (self.apply(levels, 255) * 255 + 0.5).astype(np.uint8)


def fit_colour(bg: np.ndarray, fg_bg: np.ndarray, keep: np.ndarray) -> ColourMatch:
    """Per-channel gain and offset taking ``bg`` to ``fg_bg`` ((h, w, 3) uint8, one grid) where ``keep``.

    Trimmed least squares: the pasted object, its shadow and edges the homography misses differ far
    more than the scene does, so each round drops pixels whose error exceeds 2.5 x the median and
    fits again. Clipped pixels (0 or 255 in a channel) say nothing about the gain and are left out.
    """
    # Channels first, (3, N): numpy reduces contiguous rows ~5x faster than the columns of (N, 3).
    x, y = (np.ascontiguousarray(im[keep].T, np.float32) / 255 for im in (bg, fg_bg))
    usable = (np.minimum(x.min(0), y.min(0)) > 0.5 / 255) & (np.maximum(x.max(0), y.max(0)) < 254.5 / 255)
    x, y = x[:, usable], y[:, usable]
    if x.shape[1] < 100:
        return ColourMatch()
    gain, offset = np.ones((3, 1), np.float32), np.zeros((3, 1), np.float32)
    for _ in range(4):
        err = np.abs(x * gain + offset - y).sum(0)
        use = err <= max(2.5 * float(np.median(err)), 3 / 255)
        xu, yu = x[:, use], y[:, use]
        xm, ym = xu.mean(1, keepdims=True), yu.mean(1, keepdims=True)
        var, cov = ((xu - xm) ** 2).mean(1, keepdims=True), ((xu - xm) * (yu - ym)).mean(1, keepdims=True)
        gain = np.where(var > 1e-6, cov / np.maximum(var, 1e-6), 1).astype(np.float32)
        offset = ym - gain * xm
    return ColourMatch(tuple(gain.ravel().tolist()), tuple(offset.ravel().tolist()))


def colour_on_grid(bg: np.ndarray, fg_bg: np.ndarray, mapping: np.ndarray) -> ColourMatch:
    """:func:`fit_colour` on copies of at most COLOUR_SIDE, the background warped onto the composite's grid."""
    factor = max(1, math.ceil(max(fg_bg.shape[:2]) / COLOUR_SIDE))
    (fg_small, to_small), (bg_small, from_bg) = area_reduce(fg_bg, factor), area_reduce(bg, factor)
    mapping = to_small @ mapping @ np.linalg.inv(from_bg)
    size = fg_small.shape[1], fg_small.shape[0]
    warped = cv2.warpPerspective(
        bg_small, mapping, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    keep = cv2.erode(
        covered_by(mapping, bg_small.shape[:2], size[::-1]).astype(np.uint8), np.ones((3, 3), np.uint8)
    )
    return fit_colour(warped, fg_small, keep > 0)

"""The registration every pair goes through: the fit, or a plain pair taken as one scene as it was shot."""

from __future__ import annotations

import cv2
import numpy as np

from maskdepth.align.fit import MAX_SIDE, Alignment, AlignmentError, fit_alignment
from maskdepth.align.geometry import as_pixels, grid_scaling

ALIKE = 0.8  # thumbnail correlation above which an unmatchable pair is taken as one scene as shot


def register(bg, fg_bg, *, max_side: int = MAX_SIDE) -> Alignment:
    """:func:`~maskdepth.align.fit.fit_alignment`, except that a pair too plain to match (few features: a bare wall, a tiny
    image) but clearly one scene as taken (:func:`looks_alike` once the background is brought to the
    composite's size) is used as it is, only resized: ``unmatched``.

    The model itself absorbs a couple of pixels of misalignment, so such a pair loses little; two
    different scenes, or a fit no handheld re-shot gives, still raise :class:`AlignmentError`.
    """
    try:
        return fit_alignment(bg, fg_bg, max_side=max_side)
    except AlignmentError:
        (a, _), (b, _) = as_pixels(bg, "background"), as_pixels(fg_bg, "composite")
        resized = a if a.shape == b.shape else cv2.resize(a, b.shape[1::-1], interpolation=cv2.INTER_AREA)
        if not looks_alike(resized, b):
            raise
        return Alignment(
            grid_scaling(a.shape[:2], b.shape[:2]),
            a.shape[:2],
            b.shape[:2],
            identity=a.shape == b.shape,
            unmatched=True,
        )


def looks_alike(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two same-size photos show one scene as taken: their blurred grey thumbnails correlate.

    A couple of pixels of shift, new noise or an exposure change keep the correlation of 32 px
    thumbnails near 1; another scene, or the same one turned or moved far, falls well below ALIKE.
    """
    thumbs = []
    for image in (a, b):
        grey = cv2.cvtColor(
            image if image.dtype == np.uint8 else (image * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY
        )
        small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
        thumbs.append((small - small.mean()).ravel())
    x, y = thumbs
    scale = float(np.linalg.norm(x) * np.linalg.norm(y))
    return scale == 0 and bool(np.array_equal(x, y)) or (scale > 0 and float(x @ y) / scale >= ALIKE)

"""A second handheld shot of a photo: the camera turned, moved and zoomed a little, with its own exposure.

People take the background and the composite as two photos with a phone in hand. Between the shots
the camera rolls a degree or three, pans or tilts (which moves the picture by tens of pixels and
leans it in perspective) and zooms a few percent; exposure and white balance change. The scene is
treated as a plane, so the two views differ by a homography:

>>> shot, homography = handheld_shot(photo, rng=0)  # homography maps shot pixels -> photo pixels

The shot looks at a central part of the photo, just small enough that it never sees past the
photo's edges: a real second shot sees more of the scene, never a mirrored or black border. That
crop zooms the shot in by another 3-18% (median 9% at the defaults, 4:3). The photo as the
composite then gets a background covering most of it (the rest is a border to fill); the roles
swapped (shot as the composite, photo as the background, the inverse homography) give a background
that covers the whole composite. For the alignment tests and bench (bench/align.py), and for training
pairs registered before the model sees them (:func:`registered_shot`, TwoShot's ``handheld_p``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np

from maskdepth.align import Alignment, AlignmentError, register
from maskdepth.data.twoshot import _as_float, camera_shot

CROP_STEPS = 30  # bisection steps for the largest crop inside the photo (far below a pixel)


def _motion(
    rng: np.random.Generator,
    size: tuple[int, int],
    turn_deg: float,
    shift: float,
    zoom: float,
    perspective: float,
) -> np.ndarray:
    """A random camera motion in centred pixel coordinates, shot -> photo (3x3): roll, shift, zoom, keystone.

    Perspective is drawn in coordinates where the frame's long side spans -1..1, so ``perspective``
    is the largest difference in scale between the left and right edges (a 2 degree pan of a phone's
    ~70 degree lens leans the picture by about 5%).
    """
    h, w = size
    half = max(h, w) / 2
    theta = math.radians(rng.uniform(-turn_deg, turn_deg))
    scale = math.exp(-rng.uniform(-1, 1) * math.log1p(zoom))  # the shot zoomed in by z sees 1/z of the photo
    dx, dy = rng.uniform(-shift, shift) * w, rng.uniform(-shift, shift) * h
    px, py = rng.uniform(-perspective / 2, perspective / 2, 2) / half
    c, s = math.cos(theta), math.sin(theta)
    similarity = np.array([[scale * c, -scale * s, dx], [scale * s, scale * c, dy], [0, 0, 1]])
    return similarity @ np.array([[1, 0, 0], [0, 1, 0], [px, py, 1]])


def _centred(size: tuple[int, int]) -> np.ndarray:
    """Pixel coordinates -> coordinates about the frame's centre (3x3)."""
    h, w = size
    return np.array([[1, 0, -(w - 1) / 2], [0, 1, -(h - 1) / 2], [0, 0, 1]], np.float64)


def _inside(homography: np.ndarray, size: tuple[int, int]) -> bool:
    """Whether the frame's outer corners, mapped by ``homography`` (pixels -> pixels), land inside it."""
    h, w = size
    corners = np.array([[-0.5, -0.5, 1], [w - 0.5, -0.5, 1], [w - 0.5, h - 0.5, 1], [-0.5, h - 0.5, 1]]).T
    mapped = homography @ corners
    if np.any(mapped[2] <= 0):
        return False
    x, y = mapped[:2] / mapped[2]
    return bool(np.all((x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)))


def shot_homography(size: tuple[int, int], motion: np.ndarray) -> np.ndarray:
    """Shot pixels -> photo pixels (3x3) for a centred ``motion``, the shot's field shrunk to stay inside.

    The crop factor is the largest in (0, 1] whose view lies within the photo; it is found by
    bisection because perspective makes the corners move non-linearly.
    """
    centre = _centred(size)

    def view(crop: float) -> np.ndarray:
        return np.linalg.inv(centre) @ motion @ np.diag([crop, crop, 1.0]) @ centre

    if _inside(view(1.0), size):
        return view(1.0)
    lo, hi = 0.0, 1.0  # a view shrunk to a point at the shifted centre lies inside
    for _ in range(CROP_STEPS):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _inside(view(mid), size) else (lo, mid)
    return view(lo)


def handheld_shot(
    image,
    rng: np.random.Generator | int,
    *,
    max_turn_deg: float = 3.0,
    max_shift: float = 0.04,
    max_zoom: float = 0.04,
    perspective: float = 0.05,
    photometric: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """A second photo of ``image``'s scene from a slightly moved camera, and where its pixels are in ``image``.

    Args:
        image: (H, W, 3) float in [0, 1], uint8 or a PIL image: the first shot.
        rng: a numpy Generator or a seed (same seed, same result).
        max_turn_deg: largest roll about the lens axis.
        max_shift: largest move along each axis as a fraction of the image's width / height.
        max_zoom: largest zoom in or out (0.04: x0.96..x1.04), before the crop that keeps the view inside.
        perspective: largest difference in scale between opposite edges (the lean of a pan or tilt).
        photometric: give the shot its own exposure, white balance, blur, noise and JPEG
            (:func:`maskdepth.data.twoshot.camera_shot`); False leaves only the resampling.
    Returns:
        (shot float32 (H, W, 3) in [0, 1], homography float64 (3, 3) mapping shot pixel coordinates
        (x, y) to ``image`` pixel coordinates).
    """
    rng = np.random.default_rng(rng)
    img = _as_float(image)
    size = img.shape[:2]
    homography = shot_homography(size, _motion(rng, size, max_turn_deg, max_shift, max_zoom, perspective))
    # WARP_INVERSE_MAP: shot(x) = image(homography @ x); the view lies inside, the border mode is moot.
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    shot = cv2.warpPerspective(
        img, homography, (size[1], size[0]), flags=flags, borderMode=cv2.BORDER_REFLECT
    )
    shot = np.clip(shot, 0, 1)
    return (camera_shot(shot, rng) if photometric else shot.astype(np.float32)), homography


class Registered(NamedTuple):
    """A handheld second shot registered onto the composite (:func:`registered_shot`)."""

    bg: np.ndarray  # (H, W, 3) float32 in [0, 1]: the shot on the composite's grid, the border from it
    covered: np.ndarray  # (H, W) bool: where the shot has pixels (the rest came from the composite)
    alignment: Alignment  # what the registration found
    motion: np.ndarray  # (3, 3) the truth: shot pixels -> photo (= composite) pixels


def registered_shot(photo, fg_bg, rng: np.random.Generator | int) -> Registered | None:
    """``photo`` re-shot by hand and registered back onto ``fg_bg`` exactly as prediction registers a pair.

    The background of a training pair as the model sees it at prediction time: :func:`handheld_shot`
    of the rendered background (turn, shift, zoom and perspective in fractions of the frame, so a
    128 px sample moves like a phone photo scaled down, plus its own exposure, noise and JPEG), then
    :func:`maskdepth.align.register` of that shot onto the composite and ``Alignment.warp`` with the
    border the shot does not cover filled from the composite, as the predictor does. What registration
    leaves stays in the result: resampling blur, the fit's small error, the colour match, the border.

    A faithful model of the residual for planar motion only: the scene is a plane to the shot, so
    near things do not move against far ones. True parallax needs the scene rendered again from a
    second camera pose, and each scene family builds its camera inside its own renderer
    (:mod:`maskdepth.data.families`); a second pose would have to go through every one of them.

    Args:
        photo: (H, W, 3) float in [0, 1] (or uint8): the rendered background, on the composite's grid.
        fg_bg: (H, W, 3) the composite as the model gets it (after its own camera effects).
        rng: a numpy Generator or a seed.
    Returns:
        The :class:`Registered` background, or None when registration refuses the pair or can only take
        it as shot (``unmatched``): a small plain render has too few features to match, where the phone
        photo it stands for would match, so the caller keeps its ordinary two-shot background.
    """
    shot, motion = handheld_shot(photo, rng)
    try:
        fit = register(shot, fg_bg)
    except AlignmentError:
        return None
    if fit.unmatched:
        return None
    bg, covered = fit.warp(shot, fg_bg.shape[:2], fill=fg_bg)
    return Registered(bg, covered, fit, motion)

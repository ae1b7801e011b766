"""Register a handheld background photo onto the composite before the model sees the pair.

Between two handheld shots the camera turns a degree or three, moves tens of pixels and zooms a few
percent, and exposure and white balance change; the W-Net tolerates about 2 px of misalignment. So a
pair is registered first: ORB features on reduced grey copies, a robust homography (the pasted object
is an outlier to ignore) refined on tracked corners, a per-channel colour match fitted where the scene
did not change, and the border the background does not cover filled from the composite:

>>> alignment = register(bg, fg_bg)  # (H, W, 3) uint8 or float in [0, 1]; sizes may differ
>>> aligned_bg, covered = alignment.warp(bg, size=(h, w), fill=fg_bg_at_h_w)

An exact paste short-cuts to the identity and loses nothing. Points are (x, y) pixel centres, as in
OpenCV; sizes are (H, W). Times: bench/align.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from maskdepth.align.colour import ColourMatch, colour_on_grid
from maskdepth.align.geometry import (
    area_reduce,
    as_pixels,
    corner_error,
    covered_by,
    frame_corners,
    grid_scaling,
    local_jacobian,
    map_points,
)
from maskdepth.errors import InputError

MAX_SIDE = 1024  # long side of the copies the fit runs on
ORB_FEATURES = 2000  # matching cost grows as the square: 3000 adds ~20 ms at 12 MP, not accuracy
LOWE_RATIO = 0.8  # a match must be this much closer than the second best (Lowe's ratio test)
THRESHOLD_PX = 2.5  # MAGSAC's largest inlier distance for ORB matches, reduced pixels
MIN_INLIERS = 25  # unrelated photos leave chance inliers: at most 12 over all pairs of 9 skimage photos
TRACK_POINTS = 1000  # corners tracked to refine the feature fit (0: no refinement)
TRACK_THRESHOLD_PX = 1.0  # MAGSAC's largest inlier distance for tracked corners, reduced pixels
MAX_TURN_DEG = 20.0
ZOOM_RANGE = (0.67, 1.5)
MAX_KEYSTONE = 1.5  # largest ratio of local zooms over the composite's corners (a 3° pan: ~1.06)
MIN_COVERAGE = 0.5
IDENTITY_PX = 0.3  # a fit this close to no motion (reduced pixels, at the corners) is below its precision
SAME_SHARE = 0.5  # share of equal values that marks one photo and its exact paste


class AlignmentError(InputError):
    """The background and the composite do not show the same scene from about the same spot."""


def _refuse(found: str) -> AlignmentError:
    return AlignmentError(
        f"the two photos do not seem to show the same scene from the same spot ({found}): shoot the "
        "background again from where the composite was taken, without the object"
    )


@dataclass(frozen=True, eq=False)
class Alignment:
    """Where the background's pixels are in the composite, and how its colours change, at full size."""

    homography: np.ndarray  # (3, 3) float64: background pixel (x, y) -> composite pixel
    bg_size: tuple[int, int]  # (H, W)
    fg_size: tuple[int, int]  # (H, W)
    colour: ColourMatch = ColourMatch()
    identity: bool = False  # the background is used as it is: no warp, no colour change
    matches: int = 0  # ORB matches that passed the ratio test
    inliers: int = 0  # of those, the ones the robust homography agrees with
    residual_px: float = 0.0  # median reprojection error of the final fit's inliers, composite pixels
    unmatched: bool = False  # too plain to match but one scene as taken (register): used as it is

    @property
    def still(self) -> bool:
        """No motion: the background only needs resizing to the composite's grid (no resampling warp)."""
        return bool(np.array_equal(self.homography, grid_scaling(self.bg_size, self.fg_size)))

    @property
    def _relative(self) -> np.ndarray:
        """The map from the background scaled onto the composite's grid: no motion is the identity."""
        return self.homography @ np.linalg.inv(grid_scaling(self.bg_size, self.fg_size))

    def _local(self, point: np.ndarray) -> np.ndarray:
        """(2, 2) derivative of :attr:`_relative` where it lands on composite ``point``."""
        return local_jacobian(self._relative, map_points(np.linalg.inv(self._relative), point[None])[0])

    @property
    def _centre(self) -> np.ndarray:
        return (np.array(self.fg_size[::-1], np.float64) - 1) / 2

    @property
    def rotation_deg(self) -> float:
        """How far the scene turned between the shots, at the composite's centre (degrees, clockwise +)."""
        j = self._local(self._centre)
        return math.degrees(math.atan2(j[1, 0] - j[0, 1], j[0, 0] + j[1, 1]))

    @property
    def zoom(self) -> float:
        """How much larger the scene looks in the composite than in the background scaled to its grid."""
        return math.sqrt(abs(np.linalg.det(self._local(self._centre))))

    @property
    def shift_px(self) -> tuple[float, float]:
        """(dx, dy) the scene point at the composite's centre moved by, composite pixels."""
        before = map_points(np.linalg.inv(self._relative), self._centre[None])[0]
        return float(self._centre[0] - before[0]), float(self._centre[1] - before[1])

    @property
    def keystone(self) -> float:
        """Largest / smallest local zoom over the composite's corners: 1 without perspective."""
        zooms = [abs(np.linalg.det(self._local(c))) ** 0.5 for c in frame_corners(self.fg_size)]
        return max(zooms) / max(min(zooms), 1e-12)

    @property
    def coverage(self) -> float:
        """Share of the composite the warped background covers."""
        quad = map_points(self.homography, frame_corners(self.bg_size)).astype(np.float32)
        area, _ = cv2.intersectConvexConvex(quad, frame_corners(self.fg_size).astype(np.float32))
        return float(area) / (self.fg_size[0] * self.fg_size[1])

    def warp(self, bg, size: tuple[int, int] | None = None, fill=None) -> tuple[np.ndarray, np.ndarray]:
        """The background on the composite's grid at ``size``: (aligned float32 (h, w, 3), covered bool (h, w)).

        ``bg`` is the background at full size or any scale of it (read off its shape), uint8 or float;
        ``size`` (h, w) defaults to the composite's. The colour match is applied. Pixels the background
        does not reach come from ``fill`` (the composite at ``size``) if given, else repeat its nearest
        edge. For a small ``size`` the background is first area-averaged by an integer factor, so a
        12 MP photo is never warped at full size and the result matches the full warp resized. With
        no motion (:attr:`still`) it is only resized, and without a colour change it is not touched.
        """
        h, w = self.fg_size if size is None else size
        img, peak = as_pixels(bg, "background")
        if abs(img.shape[0] * self.bg_size[1] / (img.shape[1] * self.bg_size[0]) - 1) > 0.02:
            raise InputError(
                f"warp takes the background that was fitted ({self.bg_size[1]}x{self.bg_size[0]}) at any "
                f"scale, got {img.shape[1]}x{img.shape[0]}: pass the background photo or a resized copy of it"
            )
        if self.still:  # a resize at most: an exact paste stays bit-identical
            img = img if img.shape[:2] == (h, w) else cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
            out = img.astype(np.float32) / np.float32(peak) if self.identity else self.colour.apply(img, peak)
            return out, np.ones((h, w), bool)
        mapping = grid_scaling(self.fg_size, (h, w)) @ self.homography
        mapping = mapping @ np.linalg.inv(grid_scaling(self.bg_size, img.shape[:2]))
        factor = int(1 / math.sqrt(abs(np.linalg.det(local_jacobian(mapping, np.array([w / 2, h / 2]))))))
        if factor >= 2:
            img, reduce = area_reduce(img, factor)
            mapping = mapping @ np.linalg.inv(reduce)
        warped = cv2.warpPerspective(
            img, mapping, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        out, covered = self.colour.apply(warped, peak), covered_by(mapping, img.shape[:2], (h, w))
        if fill is not None:
            fill, fill_peak = as_pixels(fill, "fill")
            if fill.shape[:2] != (h, w):
                raise InputError(
                    f"fill must be the composite at the output size {(h, w)}, got {fill.shape[:2]}"
                )
            out[~covered] = fill[~covered] / np.float32(fill_peak)
        return out, covered

    def warp_guide(self, bg: np.ndarray, fill: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The background's grey levels on the composite's full grid: (grey (H, W) uint8, covered (H, W) bool).

        What the predictor's guided refinement needs at the photo's size (the outline of what changed):
        one 8-bit channel, warped once (a 12 MP photo in a few tens of ms), the colour match applied as
        its luma-weighted gain and offset, and where the background does not reach, ``fill`` (the
        composite's grey levels, uint8) so nothing changed there. The model itself gets :meth:`warp`
        at its working size.
        """
        if bg.dtype != np.uint8 or fill.dtype != np.uint8 or fill.shape != self.fg_size:
            raise InputError("warp_guide takes the uint8 background and the composite's uint8 grey levels")
        h, w = self.fg_size
        grey = cv2.cvtColor(bg, cv2.COLOR_RGB2GRAY)
        mapping = self.homography @ np.linalg.inv(grid_scaling(self.bg_size, bg.shape[:2]))
        if self.still:
            out = grey if grey.shape == (h, w) else cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA)
            covered = np.ones((h, w), bool)
        else:
            out = cv2.warpPerspective(
                grey, mapping, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            covered = self.covered((h, w))
        if not self.colour.is_identity:
            out = cv2.LUT(out, self.colour.grey_table())
        np.copyto(out, fill, where=~covered)
        return out, covered

    def covered(self, size: tuple[int, int] | None = None) -> np.ndarray:
        """(h, w) bool: the composite's pixels (on a grid of ``size``, default its own) the background shows."""
        h, w = self.fg_size if size is None else size
        quad = map_points(grid_scaling(self.fg_size, (h, w)) @ self.homography, frame_corners(self.bg_size))
        out = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(out, np.round((quad + 0.5) * 16).astype(np.int32), 1, lineType=cv2.LINE_8, shift=4)
        return out.astype(bool)

    def describe(self) -> str:
        """One line for the CLI and the app."""
        if self.unmatched:
            return "not aligned: too few details to match (a plain scene or a small image); used as taken"
        if self.identity:
            kind = "pixel-identical pair" if self.matches == 0 else "already aligned, same colours"
            return f"{kind}: no alignment needed"
        if self.still:
            return f"already aligned (within {IDENTITY_PX} px): colours matched, no warp"
        dx, dy = self.shift_px
        return (
            f"aligned: turned {self.rotation_deg:.1f}°, shifted ({dx:.0f}, {dy:.0f}) px, zoom {self.zoom:.2f}, "
            f"covers {self.coverage:.0%} of the composite, residual {self.residual_px:.1f} px"
        )

    def to_dict(self) -> dict:
        """JSON-able record: the fit, its derived numbers and the one-line description."""
        names = "identity unmatched matches inliers residual_px rotation_deg zoom keystone coverage".split()
        return {
            "homography": self.homography.tolist(),
            "bg_size": list(self.bg_size),
            "fg_size": list(self.fg_size),
            "colour": {"gain": list(self.colour.gain), "offset": list(self.colour.offset)},
            "shift_px": list(self.shift_px),
            **{name: getattr(self, name) for name in names},
            "description": self.describe(),
        }


def _mostly_equal(bg: np.ndarray, fg_bg: np.ndarray) -> bool:
    """Whether most values in every eighth row are equal: one photo and its exact paste.

    Clipped values (a blown sky, a black night) are equal in any two shots, so they do not count.
    """
    a, b = (x[::8] if x.dtype == np.uint8 else np.round(x[::8] * 255) for x in (bg, fg_bg))
    telling = (a > 0) & (a < 255)
    return np.count_nonzero(telling & (a == b)) >= SAME_SHARE * max(np.count_nonzero(telling), 1)


def _fit_copy(image: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """A uint8 copy, long side at most ``max_side`` (integer factor), and the (3, 3) map onto it."""
    factor = max(1, math.ceil(max(image.shape[:2]) / max_side))
    small, to_small = area_reduce(image, factor) if factor > 1 else (image, np.eye(3))
    if small.dtype != np.uint8:
        small = (np.clip(small, 0, 1) * 255 + 0.5).astype(np.uint8)
    return small, to_small


def _match(bg: np.ndarray, fg_bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) background points and the (N, 2) composite points their ORB features match.

    ORB's binary descriptors compare intensities within a patch, so exposure and white balance do
    not move them. SIFT alone fits as well as ORB and the tracking of :func:`_refine` together, but
    takes ~0.85 s on a 12 MP pair on 2 cores against ~0.1 s.
    """
    orb = cv2.ORB_create(nfeatures=ORB_FEATURES)
    (kb, db), (kf, df) = (
        orb.detectAndCompute(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), None) for im in (bg, fg_bg)
    )
    if db is None or df is None or len(db) < 2 or len(df) < 2:
        return np.zeros((0, 2)), np.zeros((0, 2))
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(db, df, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < LOWE_RATIO * p[1].distance]
    src = np.array([kb[m.queryIdx].pt for m in good], np.float64).reshape(-1, 2)
    return src, np.array([kf[m.trainIdx].pt for m in good], np.float64).reshape(-1, 2)


def _homography(src: np.ndarray, dst: np.ndarray, threshold: float) -> tuple[np.ndarray | None, np.ndarray]:
    """Robust (MAGSAC++) src -> dst homography, or None, and the (N,) bool inlier mask."""
    if len(src) < MIN_INLIERS:
        return None, np.zeros(len(src), bool)
    homography, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, threshold, confidence=0.999)
    return homography, (mask.ravel() > 0 if mask is not None else np.zeros(len(src), bool))


def _refine(homography: np.ndarray, bg: np.ndarray, fg_bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The feature fit of the reduced copies refined on tracked corners, and those corners' (N,) errors.

    ORB keeps its best-scoring keypoints, often bunched in a few textured patches, at whole pixels
    of its pyramid levels, so the fit extrapolates to the frame's corners. So the background is
    warped by that fit onto the composite's grid, Shi-Tomasi corners spread a minimum distance apart
    are found in it, pyramidal Lucas-Kanade tracks what is left of their motion (no turn or zoom any
    more, so a small window does) to a fraction of a pixel, and a homography fitted on them corrects
    the fit: at 12 MP the median corner error falls from ~6 px to ~0.4 px for ~15 ms (bench/align.py).
    ECC (cv2.findTransformECC) helped as much on plain pairs but was pulled off by the pasted object
    and by flat skies. ``bg`` must already carry the composite's colours: LK compares intensities.
    """
    h, w = fg_bg.shape[:2]
    flags, border = cv2.INTER_LINEAR, cv2.BORDER_REPLICATE
    warped = cv2.cvtColor(
        cv2.warpPerspective(bg, homography, (w, h), flags=flags, borderMode=border), cv2.COLOR_RGB2GRAY
    )
    cover = cv2.erode(
        covered_by(homography, bg.shape[:2], (h, w)).astype(np.uint8), np.ones((15, 15), np.uint8)
    )
    points = cv2.goodFeaturesToTrack(warped, TRACK_POINTS, 0.01, max(h, w) / 50, mask=cover, blockSize=7)
    if points is None or len(points) < MIN_INLIERS:
        return homography, np.zeros(0)
    fg_grey = cv2.cvtColor(fg_bg, cv2.COLOR_RGB2GRAY)
    tracked, status, _ = cv2.calcOpticalFlowPyrLK(warped, fg_grey, points, None, winSize=(15, 15))
    ok = status.ravel() == 1
    src, dst = points.reshape(-1, 2)[ok].astype(np.float64), tracked.reshape(-1, 2)[ok].astype(np.float64)
    residual, inliers = _homography(src, dst, TRACK_THRESHOLD_PX)
    if residual is None or inliers.sum() < MIN_INLIERS:
        return homography, np.zeros(0)
    return residual @ homography, np.linalg.norm(map_points(residual, src[inliers]) - dst[inliers], axis=1)


def _check_plausible(fit: Alignment) -> None:
    """Refuse a fit no handheld re-shot gives: a fold, a large turn or zoom, strong perspective, little overlap."""
    corners = np.c_[frame_corners(fit.fg_size), np.ones(4)]
    if np.any(corners @ np.linalg.inv(fit.homography)[2] <= 0):
        raise _refuse(f"the best fit of {fit.inliers} matches folds the picture over")
    lo, hi = ZOOM_RANGE
    problems = {  # what is wrong -> whether it is
        f"turned {fit.rotation_deg:.1f}° (at most {MAX_TURN_DEG:g})": abs(fit.rotation_deg) > MAX_TURN_DEG,
        f"zoom {fit.zoom:.2f} (within {lo}..{hi})": not lo <= fit.zoom <= hi,
        f"perspective {fit.keystone:.2f} (at most {MAX_KEYSTONE})": fit.keystone > MAX_KEYSTONE,
        f"covers {fit.coverage:.0%} of the composite (at least {MIN_COVERAGE:.0%})": fit.coverage
        < MIN_COVERAGE,
    }
    found = [text for text, wrong in problems.items() if wrong]
    if found:
        raise _refuse(f"the best fit of {fit.inliers} of {fit.matches} matches: " + ", ".join(found))


def fit_alignment(bg, fg_bg, *, max_side: int = MAX_SIDE) -> Alignment:
    """Fit where the background's pixels are in the composite and how its colours change.

    Args:
        bg, fg_bg: (H, W, 3) uint8 or float in [0, 1]; the sizes may differ (the background is mapped
            onto the composite's pixel grid).
        max_side: long side of the reduced copies the fit runs on.
    Returns:
        The :class:`Alignment`; ``identity`` for one photo and its exact paste, or a fit within
        IDENTITY_PX of no motion whose colours agree; ``still`` (no warp) for such a fit whose colours differ.
    Raises:
        AlignmentError: too few agreeing matches, or a fit no handheld re-shot gives.
    """
    (bg, _), (fg_bg, _) = as_pixels(bg, "background"), as_pixels(fg_bg, "composite")
    bg_size, fg_size = bg.shape[:2], fg_bg.shape[:2]
    no_motion = grid_scaling(bg_size, fg_size)
    if bg_size == fg_size and _mostly_equal(bg, fg_bg):
        return Alignment(no_motion, bg_size, fg_size, identity=True)
    (bg_small, to_bg), (fg_small, to_fg) = _fit_copy(bg, max_side), _fit_copy(fg_bg, max_side)
    src, dst = _match(bg_small, fg_small)
    small, inliers = _homography(src, dst, THRESHOLD_PX)
    if small is None or inliers.sum() < MIN_INLIERS:
        raise _refuse(f"only {inliers.sum()} of {len(src)} matches agree, at least {MIN_INLIERS} needed")
    full = np.linalg.inv(to_fg) @ small @ to_bg
    _check_plausible(Alignment(full, bg_size, fg_size, matches=len(src), inliers=int(inliers.sum())))
    colour = colour_on_grid(bg_small, fg_small, small)
    errors = np.linalg.norm(map_points(small, src[inliers]) - dst[inliers], axis=1)
    if TRACK_POINTS:
        matched = cv2.LUT(bg_small, colour.table())
        small, tracked = _refine(small, matched, fg_small)
        errors = tracked if len(tracked) else errors
    homography = np.linalg.inv(to_fg) @ small @ to_bg
    # Closer to no motion than the fit can tell apart: a warp would only blur.
    still = bool(corner_error(homography, no_motion, fg_size) * to_fg[0, 0] <= IDENTITY_PX)
    identity = still and colour.is_identity
    return Alignment(
        no_motion if still else homography,
        bg_size,
        fg_size,
        ColourMatch() if identity else colour,
        identity,
        len(src),
        int(inliers.sum()),
        float(np.median(errors)) / to_fg[0, 0],
    )

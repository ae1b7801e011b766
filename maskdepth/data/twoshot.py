"""Two shots, not one image: make (bg, fg_bg) look like two photographs of the same scene.

A user photographs the scene, puts the object in and photographs it again. Between the two shots
the camera moves a little (sub-pixel to ~2 px, a tiny rotation), exposure and white balance drift,
each frame has its own sensor noise, blur and JPEG, and the object casts a shadow (sometimes a
reflection) on the scene. :func:`two_shots` applies all of that to any pair, synthetic or real:

>>> bg2, fg_bg2 = two_shots(bg, fg_bg, rng=0, mask=mask)  # float (H, W, 3) in [0, 1] or PIL images

The shadow changes fg_bg only and is not part of the mask; bg is the image that moves, so targets
(mask, depth), which belong to fg_bg, stay aligned. Every draw comes from the given generator or seed.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage


@dataclass(frozen=True)
class TwoShot:
    """Ranges (lo, hi) and probabilities of the two-shot effects; each image draws its own values.

    The defaults are the shipped model's (recipes/shipped.toml; TrainConfig's ``wall_shadows``,
    ``black_edges``, ``camouflage``, ``relight`` and ``handheld`` set the shares that vary between recipes).
    """

    shift_px: float = 2.0  # largest misalignment of bg against fg_bg, pixels
    rotate_deg: float = 0.5  # largest rotation of bg against fg_bg
    exposure: float = 0.15  # std of log exposure gain per image
    white_balance: float = 0.04  # std of log gain per colour channel per image
    blur: tuple[float, float] = (0.0, 0.9)  # Gaussian blur sigma per image, pixels
    read_noise: tuple[float, float] = (0.002, 0.02)  # std of signal-independent noise
    shot_noise: tuple[float, float] = (0.0, 0.01)  # variance per unit of signal (photon noise)
    jpeg: tuple[int, int] = (35, 95)  # JPEG quality range
    jpeg_p: float = 0.9  # probability that an image is JPEG-compressed
    shadow_p: float = 0.8  # probability of a cast shadow (needs the mask)
    shadow_strength: tuple[float, float] = (0.3, 0.7)  # fraction of light the shadow takes away
    reflection_p: float = 0.1  # probability of a faint mirror image below the object (needs the mask)
    # Share of the shadows that fall on a surface behind the object (a wall, a hillside, a bookshelf)
    # instead of on the ground: the whole silhouette moved, scaled and sheared (wall_shadow).
    wall_shadow_p: float = 0.4
    # Share of backgrounds aligned onto the composite with black where the moved shot has no pixels
    # (what an alignment tool or a rotate leaves at the borders) instead of repeated edge pixels.
    black_edge_p: float = 0.2
    # Share of a dataset's pairs left as one image + its exact paste (SyntheticScenes reads it): the
    # app's examples and many users paste into one photo, and exact pastes must stay exact.
    clean_p: float = 0.15
    # Share of scene samples whose main object wears the scene it is pasted into: a crop of the same
    # background from beside it (SyntheticScenes applies it). A real paste often matches what is
    # behind it (brown wood over a brown road): told apart by its outline and the break in the
    # scene's structure, not by colour.
    camouflage_p: float = 0.15
    # Share of scene samples lit again by one smooth light field over the whole scene, the same in
    # both shots (SyntheticScenes applies it): a ramp in any direction and a few soft pools of light
    # or shade (light_field). The rendered scenes are lit by a lamp that fades with distance, so
    # "brighter is nearer" holds in them and not in real photos; light that ignores depth takes that
    # cue away (docs/research.md, "Depth on real scenes").
    relight_p: float = 0.5
    # Share of two-shot samples whose background is a second handheld shot of the scene registered
    # back onto the composite as prediction registers every pair (SyntheticScenes applies it:
    # maskdepth.data.handheld.registered_shot), so the model sees what registration leaves.
    handheld_p: float = 0.0

    def describe(self) -> str:
        """The shares that vary between recipes, in words: "wall shadows 0.4, black edges 0.2, ..."."""
        shares = {
            "wall shadows": self.wall_shadow_p,
            "black edges": self.black_edge_p,
            "camouflage": self.camouflage_p,
            "relit": self.relight_p,
        }
        if self.handheld_p:  # named only when used: cards of models trained without it read as before
            shares["handheld"] = self.handheld_p
        return ", ".join(f"{name} {p:g}" for name, p in shares.items())


def _as_float(image) -> np.ndarray:
    """PIL image, uint8 or float array -> float32 (H, W, 3) in [0, 1]."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    a = np.asarray(image)
    a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {a.shape}")
    return a


def _from_foot(image: np.ndarray, foot: float, squash: float, shear: float) -> np.ndarray:
    """Map a standing object's pixels onto the ground: height h above row ``foot`` lands at foot - squash * h.

    Negative ``squash`` throws it below the foot (towards the camera); ``shear`` moves it sideways
    by shear * h pixels. Works on (H, W) or (H, W, C).
    """
    # Output (y', x') samples input (y, x) with h = (foot - y') / squash, y = foot - h, x = x' - shear * h.
    matrix = [[1 / squash, 0.0], [shear / squash, 1.0]]
    offset = [foot - foot / squash, -shear * foot / squash]
    return _affine(image, matrix, offset, edge=False)


def _objects(mask: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """Connected objects of a mask: (their own mask, foot row) for each one of 4 or more pixels."""
    labels, n = ndimage.label(mask > 0.5)
    out = []
    for k in range(1, n + 1):
        own = labels == k
        if own.sum() >= 4:
            out.append((own.astype(np.float32), float(np.nonzero(own.any(axis=1))[0].max())))
    return out


def cast_shadow(fg_bg, mask, rng: np.random.Generator | int, strength: float | None = None) -> np.ndarray:
    """Darken the scene where each object of ``mask`` throws its shadow; fg_bg changes, the mask does not.

    One light for the image: each object's silhouette is squashed onto the ground from its foot
    (behind it, or in front of it when the light is behind), sheared sideways, blurred, and a
    contact shadow darkens the ground at the foot. Object pixels themselves are not darkened.

    Args:
        fg_bg: (H, W, 3) float in [0, 1], uint8 or a PIL image.
        mask: (H, W) the object(s), 1 inside (float or bool).
        rng: a numpy Generator or a seed.
        strength: fraction of light the shadow removes (None: drawn from TwoShot.shadow_strength).
    Returns:
        float32 (H, W, 3), the shadowed composite.
    """
    rng = np.random.default_rng(rng)
    out, mask = _as_float(fg_bg), np.asarray(mask, np.float32)
    strength = rng.uniform(*TwoShot.shadow_strength) if strength is None else strength
    squash = rng.uniform(0.15, 0.6) * (1 if rng.random() < 0.7 else -0.6)
    shear = rng.uniform(-1.2, 1.2)
    shadow = np.zeros(mask.shape, np.float32)
    for own, foot in _objects(mask):
        tall = foot - np.nonzero(own.any(axis=1))[0].min() + 1
        cast = _from_foot(own, foot, squash, shear)
        contact = _from_foot(own, foot, 0.06, 0.0)  # ambient occlusion right at the foot
        sigma = max(0.6, rng.uniform(0.02, 0.08) * tall)
        shadow = np.maximum(shadow, blur(np.maximum(cast, contact), sigma))
    light = 1 - strength * np.clip(shadow * 1.4, 0, 1) * (1 - mask)
    return (out * light[..., None]).astype(np.float32)


def wall_shadow(fg_bg, mask, rng: np.random.Generator | int, strength: float | None = None) -> np.ndarray:
    """Darken the scene where the objects' silhouette falls on a surface behind them; the mask does not change.

    A light off the camera's axis throws the whole silhouette onto a wall or slope behind the
    object: moved in any direction by 3% to 120% of the objects' size (log-uniform: the further the
    wall, the further the shadow; it may stand apart from the object), scaled 0.8-1.3 and sheared,
    blurred by 1-8% of their size. Object pixels themselves are not darkened. Arguments and
    result as :func:`cast_shadow`; a mask of fewer than 4 pixels leaves the image as it is.
    """
    rng = np.random.default_rng(rng)
    out, mask = _as_float(fg_bg), np.asarray(mask, np.float32)
    strength = rng.uniform(*TwoShot.shadow_strength) if strength is None else strength
    rows, cols = np.nonzero(mask > 0.5)
    if rows.size < 4:
        return out
    centre = np.array([rows.mean(), cols.mean()])
    extent = float(max(np.ptp(rows), np.ptp(cols)) + 1)
    r, phi = extent * 0.03 * 40 ** rng.random(), rng.uniform(0, 2 * math.pi)
    scale = rng.uniform(0.8, 1.3, 2)
    shear = rng.uniform(-0.3, 0.3)
    # Output (y', x') samples the mask at A^-1 (p' - c - t) + c: silhouette scaled about its centre, sheared, moved.
    forward = np.array([[scale[0], 0.0], [shear * scale[0], scale[1]]])
    inverse = np.linalg.inv(forward)
    move = centre + [r * math.sin(phi), r * math.cos(phi)]
    cast = _affine(mask, inverse, centre - inverse @ move, edge=False)
    shadow = blur(cast, max(0.6, rng.uniform(0.01, 0.08) * extent))
    light = 1 - strength * np.clip(shadow * 1.2, 0, 1) * (1 - mask)
    return (out * light[..., None]).astype(np.float32)


def light_field(shape: tuple[int, int], rng: np.random.Generator | int, strength: float = 0.45) -> np.ndarray:
    """A smooth random gain (H, W) float32 around 1: a ramp in any direction and 1-3 soft pools of light or shade.

    The ramp's log reaches at most ``strength`` x 0.71 at the corners, each pool's ``strength`` at its
    centre. With the default, 9 in 10 fields stay within x0.54..x1.81 (5th percentile of the lowest gain,
    95th of the highest, over 1000 seeds); the extremes seen were x0.33 and x2.8. Nothing in it depends
    on the scene.
    """
    rng = np.random.default_rng(rng)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = (yy - (h - 1) / 2) / max(h, w), (xx - (w - 1) / 2) / max(h, w)  # about -0.5..0.5
    phi = rng.uniform(0, 2 * math.pi)
    log_gain = 2 * strength * rng.uniform(-1, 1) * (math.sin(phi) * yy + math.cos(phi) * xx)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(-0.6, 0.6, 2)
        sigma = rng.uniform(0.12, 0.45)
        pool = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
        log_gain += strength * rng.uniform(-1, 1) * pool
    return np.exp(log_gain).astype(np.float32)


def relight(images, rng: np.random.Generator | int, strength: float = 0.45) -> list[np.ndarray]:
    """Light every image of one scene (same size) by the same :func:`light_field`; float32 (H, W, 3), clipped to 1."""
    images = [_as_float(im) for im in images]
    gain = light_field(images[0].shape[:2], rng, strength)[..., None]
    return [np.clip(im * gain, 0, 1).astype(np.float32) for im in images]


def add_reflection(fg_bg, mask, rng: np.random.Generator | int) -> np.ndarray:
    """A faint mirror image of each object below its foot, as on a glossy floor (outside the mask only)."""
    rng = np.random.default_rng(rng)
    out, mask = _as_float(fg_bg), np.asarray(mask, np.float32)
    opacity = rng.uniform(0.1, 0.3)
    for own, foot in _objects(mask):
        mirrored = _from_foot(out * own[..., None], foot, -1.0, 0.0)
        cover = _from_foot(own, foot, -1.0, 0.0)
        rows = np.arange(mask.shape[0], dtype=np.float32)[:, None]
        fade = opacity * np.clip(1 - (rows - foot) / max(1.0, 0.5 * own.any(axis=1).sum()), 0, 1)
        w = (cover * fade * (1 - mask))[..., None]
        out = out * (1 - w) + mirrored * w
    return out.astype(np.float32)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an (H, W) or (H, W, C) array, edges repeated (sigma in pixels)."""
    if sigma <= 0:
        return image
    radius = max(1, math.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).astype(np.float32)
    taps /= taps.sum()
    h, w = image.shape[:2]
    rows = np.concatenate([image[:1].repeat(radius, 0), image, image[-1:].repeat(radius, 0)], 0)
    out = taps[0] * rows[:h]
    for k in range(1, len(taps)):
        out += taps[k] * rows[k : k + h]
    cols = np.concatenate([out[:, :1].repeat(radius, 1), out, out[:, -1:].repeat(radius, 1)], 1)
    out = taps[0] * cols[:, :w]
    for k in range(1, len(taps)):
        out += taps[k] * cols[:, k : k + w]
    return out.astype(np.float32, copy=False)


def _affine(image: np.ndarray, matrix, offset, edge: bool) -> np.ndarray:
    """Bilinear warp: output (y, x) samples ``image`` at matrix @ (y, x) + offset.

    (H, W) or (H, W, C); outside the image: the nearest edge pixel if ``edge`` else 0.
    """
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sy = matrix[0][0] * yy + matrix[0][1] * xx + offset[0]
    sx = matrix[1][0] * yy + matrix[1][1] * xx + offset[1]
    inside = (sy > -1) & (sy < h) & (sx > -1) & (sx < w)
    sy, sx = np.clip(sy, 0, h - 1), np.clip(sx, 0, w - 1)
    y0, x0 = np.minimum(sy.astype(np.int64), max(h - 2, 0)), np.minimum(sx.astype(np.int64), max(w - 2, 0))
    fy, fx = sy - y0, sx - x0
    flat = image.reshape(h * w, -1)
    i00 = (y0 * w + x0).ravel()
    dy, dx = min(w, (h - 1) * w), min(1, w - 1)  # index steps to the next row / column
    fy, fx = fy.reshape(-1, 1), fx.reshape(-1, 1)
    top = flat[i00] * (1 - fx) + flat[i00 + dx] * fx
    bottom = flat[i00 + dy] * (1 - fx) + flat[i00 + dy + dx] * fx
    out = (top * (1 - fy) + bottom * fy).astype(np.float32).reshape(image.shape)
    return out if edge else out * (inside if image.ndim == 2 else inside[..., None])


def misalign(
    image,
    rng: np.random.Generator | int,
    shift_px: float = 2.0,
    rotate_deg: float = 0.5,
    black_edges: bool = False,
) -> np.ndarray:
    """Move ``image`` by up to ``shift_px`` (any direction) and rotate it up to ``rotate_deg`` about its centre.

    Bilinear resampling; where the moved image has no pixels, edges repeated (or black if
    ``black_edges``); float32 (H, W, 3).
    """
    rng = np.random.default_rng(rng)
    img = _as_float(image)
    r, phi = shift_px * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    theta = math.radians(rng.uniform(-rotate_deg, rotate_deg))
    c, s = math.cos(theta), math.sin(theta)
    centre = (np.array(img.shape[:2], np.float64) - 1) / 2
    matrix = np.array([[c, s], [-s, c]])  # (y, x) rotated by theta about the centre
    offset = centre - matrix @ centre + [r * math.sin(phi), r * math.cos(phi)]
    return _affine(img, matrix, offset, edge=not black_edges)


def camera_shot(image, rng: np.random.Generator | int, settings: TwoShot = TwoShot()) -> np.ndarray:
    """One photograph's own look: exposure, white balance, blur, sensor noise, 8-bit JPEG. float32 (H, W, 3)."""
    rng = np.random.default_rng(rng)
    img = _as_float(image)
    gain = math.exp(rng.normal(0, settings.exposure)) * np.exp(rng.normal(0, settings.white_balance, 3))
    img = img * gain.astype(np.float32)
    sigma = rng.uniform(*settings.blur)
    if sigma > 0.2:
        img = blur(img, sigma)
    variance = rng.uniform(*settings.shot_noise) * np.clip(img, 0, 1) + rng.uniform(*settings.read_noise) ** 2
    img = img + np.sqrt(variance) * rng.standard_normal(img.shape, dtype=np.float32)
    img8 = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    if rng.random() < settings.jpeg_p:
        buf = io.BytesIO()
        Image.fromarray(img8).save(
            buf, format="JPEG", quality=int(rng.integers(*settings.jpeg, endpoint=True))
        )
        img8 = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return img8.astype(np.float32) / 255.0


def two_shots(bg, fg_bg, rng: np.random.Generator | int, mask=None, settings: TwoShot = TwoShot()):
    """Make a (background, composite) pair look like two separate photographs of one scene.

    Args:
        bg, fg_bg: (H, W, 3) float in [0, 1], uint8 or PIL images of the same size.
        rng: a numpy Generator or a seed (same seed, same result).
        mask: optional (H, W) object mask of fg_bg; enables the cast shadow and reflection.
        settings: effect ranges and probabilities.
    Returns:
        (bg, fg_bg) float32 (H, W, 3) in [0, 1]. fg_bg keeps its geometry (mask and depth still
        fit it); bg is shifted / rotated against it.
    """
    rng = np.random.default_rng(rng)
    bg, fg_bg = _as_float(bg), _as_float(fg_bg)
    if bg.shape != fg_bg.shape:
        raise ValueError(f"bg {bg.shape} and fg_bg {fg_bg.shape} must have the same size")
    if mask is not None and rng.random() < settings.shadow_p:
        on_wall = settings.wall_shadow_p > 0 and rng.random() < settings.wall_shadow_p
        fg_bg = (wall_shadow if on_wall else cast_shadow)(fg_bg, mask, rng)
    if mask is not None and rng.random() < settings.reflection_p:
        fg_bg = add_reflection(fg_bg, mask, rng)
    black = settings.black_edge_p > 0 and rng.random() < settings.black_edge_p
    bg = misalign(bg, rng, settings.shift_px, settings.rotate_deg, black_edges=black)
    return camera_shot(bg, rng, settings), camera_shot(fg_bg, rng, settings)

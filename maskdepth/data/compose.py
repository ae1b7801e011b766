"""Realistic compositing for the scene families: several objects at different depths, soft edges, haze, defocus.

Objects are z-tested against the scene and each other, so they occlude and are occluded; the
mask is the visible part of the pasted objects only, and depth stays exact. Used by
:class:`maskdepth.data.synthetic.SyntheticScenes` when ``families`` is set.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from maskdepth.data.families import Family
from maskdepth.data.geometry import Background, apply_haze
from maskdepth.data.objects import Foreground, Projection, make_foreground, place, project
from maskdepth.data.textures import photo_indices, texture_pool
from maskdepth.data.twoshot import blur

PHOTO_CUTOUT = 0.4  # probability that an object wears a photo (stretched over it once) instead of a pattern
SOFT_EDGE = 0.5  # probability that an object's rim is feathered (cut-out anti-aliasing / matting)
DEFOCUS_LEVELS = (0.0, 0.8, 1.6, 2.5)  # blur sigmas (output pixels) blended by circle of confusion


def _variant(seed: int, index: int, family: Family, rng: np.random.Generator) -> Foreground:
    """Foreground ``index`` scaled for the family, wearing a photo crop with probability PHOTO_CUTOUT."""
    fg = make_foreground(seed, index)
    changes = {"height": fg.height * family.object_scale}
    photos = photo_indices(seed)
    if len(photos) and rng.random() < PHOTO_CUTOUT:
        size = changes["height"] * max(fg.aspect, 1.0)
        changes.update(texture=texture_pool(seed)[photos[rng.integers(len(photos))]], tex_scale=1.0 / size)
    return dataclasses.replace(fg, **changes)


def furnish(
    bg: Background, seed: int, family: Family, objects: list[int], rng: np.random.Generator
) -> Background:
    """``bg`` with foregrounds ``objects`` standing in it as part of the scene (5-60% of the image tall).

    They are in both photos and never in the mask, so the model meets objects whose depth it
    must tell from the picture alone, as in a real photo with nothing pasted (bg == composite).
    Pasted objects later stand only on the floor they leave visible.
    """
    rgb, z, covered = bg.rgb.copy(), bg.z.copy(), np.zeros(bg.z.shape, bool)
    fgs = [_variant(seed, f, family, rng) for f in objects]
    feet = [place(bg, fg, rng, 0.05, 0.6) for fg in fgs]
    for k in sorted(range(len(fgs)), key=lambda k: -feet[k][2]):  # far to near
        obj = project(bg, fgs[k], feet[k], bool(rng.integers(2)))
        visible = obj.alpha & (obj.z < z[obj.region])
        _draw(rgb, z, bg, obj, visible, visible.astype(np.float32))
        covered[obj.region] |= visible
    return dataclasses.replace(bg, rgb=rgb, z=z, floor=bg.floor & ~covered)


def _draw(
    rgb: np.ndarray, z: np.ndarray, bg: Background, obj: Projection, visible: np.ndarray, alpha: np.ndarray
) -> None:
    """Blend ``obj``'s hazed colour over ``rgb`` with ``alpha`` and put its distance into ``z`` where ``visible``."""
    colour = apply_haze(obj.colour, obj.z, bg.haze, bg.haze_distance)
    a = alpha[..., None]
    rgb[obj.region] = rgb[obj.region] * (1 - a) + colour * a
    z[obj.region] = np.where(visible, obj.z, z[obj.region])


def compose(
    bg: Background,
    seed: int,
    family: Family,
    objects: list[int],
    rng: np.random.Generator,
    flip: bool,
    camouflage: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    """Paste foregrounds ``objects`` (the first is the main one, 30-85% of the image tall) into ``bg``.

    ``camouflage``: the main object wears a crop of ``bg`` from beside it (:func:`camouflaged`), drawn
    from this generator so that ``rng``'s draws, and so every other sample, stay as they were.
    Returns at bg's resolution: fg_bg (H, W, 3), mask (H, W) float {0, 1} (visible pasted pixels),
    z (H, W) metres and focus_z, the main object's distance (where a camera would focus).
    """
    fgs = [_variant(seed, f, family, rng) for f in objects]
    feet = [place(bg, fgs[0], rng)] + [place(bg, fg, rng, 0.12, 0.5) for fg in fgs[1:]]
    fg_bg, z = bg.rgb.copy(), bg.z.copy()
    mask = np.zeros(z.shape, np.float32)
    for k in sorted(range(len(fgs)), key=lambda k: -feet[k][2]):  # far to near: near rims blend over far ones
        obj = project(bg, fgs[k], feet[k], flip if k == 0 else bool(rng.integers(2)))
        if k == 0 and camouflage is not None:
            obj = camouflaged(bg.rgb, obj, camouflage)
        visible = obj.alpha & (obj.z < z[obj.region])
        if not visible.any():
            continue
        alpha = visible.astype(np.float32)
        if rng.random() < SOFT_EDGE:  # feather the rim: about 0.5 at the silhouette, 1 inside
            alpha *= ndimage.gaussian_filter(alpha, rng.uniform(0.6, 1.8), mode="constant")
        _draw(fg_bg, z, bg, obj, visible, alpha)
        mask[obj.region][visible] = 1.0
    return {"fg_bg": fg_bg, "mask": mask, "z": z, "focus_z": feet[0][2]}


def camouflaged(rgb: np.ndarray, obj: Projection, rng: np.random.Generator) -> Projection:
    """``obj`` wearing the scene ``rgb`` from 0.6-1.5 of its own size away (mirrored at the borders).

    Its colours are the scene's, mixed with up to 30% of its own and a brightness change, so only
    its outline and the break it makes in the scene's structure tell it from what is behind it.
    """
    rows, cols = obj.region
    angle, reach = rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 1.5)
    dy = int(round(np.sin(angle) * reach * (rows.stop - rows.start)))
    dx = int(round(np.cos(angle) * reach * (cols.stop - cols.start)))

    def mirror(index: np.ndarray, n: int) -> np.ndarray:
        index = np.abs(index) % (2 * n - 2) if n > 1 else np.zeros_like(index)
        return np.where(index > n - 1, 2 * (n - 1) - index, index)

    ys = mirror(np.arange(rows.start, rows.stop) + dy, rgb.shape[0])
    xs = mirror(np.arange(cols.start, cols.stop) + dx, rgb.shape[1])
    mix, gain = rng.uniform(0, 0.3), rng.uniform(0.8, 1.15)
    colour = rgb[ys][:, xs] * gain * (1 - mix) + obj.colour * mix
    return obj._replace(colour=np.clip(colour, 0, 1).astype(np.float32))


def defocus(rgb: np.ndarray, depth: np.ndarray, focus: float, strength: float) -> np.ndarray:
    """Depth-of-field blur: circle of confusion ``strength * |depth - focus|`` px (depth = inverse distance).

    rgb (H, W, 3), depth (H, W) in the DEPTH_CONVENTION; blends a few Gaussian levels per pixel.
    """
    coc = np.clip(strength * np.abs(depth - focus), 0, DEFOCUS_LEVELS[-1])
    out = np.zeros_like(rgb)
    previous = rgb
    for lo, hi in zip(DEFOCUS_LEVELS[:-1], DEFOCUS_LEVELS[1:], strict=True):
        blurred = blur(rgb, hi)
        w = np.clip((coc - lo) / (hi - lo), 0, 1)[..., None]
        inside = ((coc >= lo) & ((coc < hi) | (hi == DEFOCUS_LEVELS[-1])))[..., None]
        out = np.where(inside, previous * (1 - w) + blurred * w, out)
        previous = blurred
    return out.astype(np.float32)

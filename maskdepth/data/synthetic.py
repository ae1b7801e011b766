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

Sample ``i`` is a pure function of (seed, i): the same on every machine. With ``families`` the
generator draws other kinds of scene too (:mod:`maskdepth.data.families`), and with ``two_shot``
bg and fg_bg become two photographs (:mod:`maskdepth.data.twoshot`).
Depth convention: see :data:`DEPTH_CONVENTION`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from maskdepth.data.compose import compose, defocus, furnish
from maskdepth.data.families import FAMILIES, Family, family_of, resolve
from maskdepth.data.families.room import render_background
from maskdepth.data.geometry import (
    DEPTH_CONVENTION,
    SUPERSAMPLE,
    Z_REF,
    Background,
    depth_from_z,
    downsample,
)
from maskdepth.data.handheld import registered_shot
from maskdepth.data.objects import SHAPE_KINDS, Foreground, make_foreground, place, project
from maskdepth.data.twoshot import TwoShot, relight, two_shots

NOTHING_PASTED = 0.05  # share of scene-family samples where the composite is the scene itself
# One sample's random streams, spawned from SeedSequence([seed, i]): each choice draws from its own,
# so turning one effect on or off (or changing its share) leaves every other draw of the sample alone.
# A new stream goes at the end: spawned children depend on their position only, so the others keep theirs.
STREAMS = ("family", "scene", "camouflage", "relight", "clean", "shots", "handheld")

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

    Each item is the sample dict: ``bg``, ``fg_bg`` (3, H, W), ``mask``, ``depth`` (1, H, W),
    float32 in [0, 1]; ``size`` is a side or (H, W).

    The defaults are the seed's recipe on room scenes (one object, its exact paste). The shipped
    model's data is ``families="all", two_shot=True`` (TrainConfig's defaults). Options:

    - ``families``: a mix name from :data:`maskdepth.data.families.MIXES` (``"all"`` the training
      mix, ``"heldout"`` the evaluation-only family, ...; ``"rooms"`` or None: the default) or a list
      of names from :data:`~maskdepth.data.families.FAMILIES`; scenes then also get several
      objects at different depths that occlude one another, photo-textured objects, soft edges,
      haze and depth of field (see :mod:`maskdepth.data.compose`); up to ``Family.scene_objects``
      objects that belong to the scene (in both photos, not in the mask); and in
      :data:`NOTHING_PASTED` of the samples nothing is pasted at all (an empty mask).
    - ``two_shot``: True (:class:`~maskdepth.data.twoshot.TwoShot`'s defaults) or a ``TwoShot``: bg
      and fg_bg become two photos (shadow, misalignment, exposure, noise, JPEG), and the scene
      families' samples are camouflaged and relit in the shares it gives; in its ``handheld_p``
      share bg is a handheld re-shot registered back (:func:`~maskdepth.data.handheld.registered_shot`).
    """

    def __init__(
        self,
        backgrounds: int = 100,
        foregrounds: int = 100,
        positions: int = 20,
        flips: bool = True,
        size: int | tuple[int, int] = 64,
        seed: int = 0,
        *,
        families: str | Sequence[str] | None = None,
        two_shot: bool | TwoShot = False,
        cache_size: int = 256,
    ):
        if min(backgrounds, foregrounds, positions) < 1:
            raise ValueError("backgrounds, foregrounds and positions must each be >= 1")
        shape = (size, size) if isinstance(size, int) else tuple(size)
        if min(shape) < 32:
            raise ValueError(f"size must be >= 32 (the W-Net pools five times), got {size}")
        self.backgrounds, self.foregrounds, self.positions = backgrounds, foregrounds, positions
        self.flips = 2 if flips else 1
        self.size, self.shape, self.seed = size, shape, seed
        families = None if families == "rooms" else families
        self.families = None if families is None else resolve(families)
        self._families_arg = families  # as given: a mix name keeps its own weights in at_shape's copies
        # The classic family's share is drawn per sample, on every background (so every room of the
        # set is seen); the other families share out the backgrounds by their own weights.
        self._classic, self._by_background = None, self.families
        if self.families is not None:
            pairs = list(zip(*self.families, strict=True))
            classic = [(n, w) for n, w in pairs if FAMILIES[n].classic]
            others = [(n, w) for n, w in pairs if not FAMILIES[n].classic]
            if classic and others:
                self._classic, self._by_background = classic[0], resolve(dict(others))
        self.two_shot = TwoShot() if two_shot is True else (two_shot or None)
        self.cache_size = cache_size  # backgrounds kept rendered (memory bound for large sets)
        self._bg_cache: dict[tuple[str, int], tuple[Background, np.ndarray]] = {}

    def at_shape(self, shape: tuple[int, int], cache_size: int | None = None) -> SyntheticScenes:
        """The same samples rendered at ``shape`` (H, W): same scenes, objects, positions and seeds."""
        return SyntheticScenes(
            self.backgrounds,
            self.foregrounds,
            self.positions,
            self.flips == 2,
            tuple(shape),
            self.seed,
            families=self._families_arg,
            two_shot=self.two_shot or False,
            cache_size=self.cache_size if cache_size is None else cache_size,
        )

    def __len__(self) -> int:
        return self.backgrounds * self.foregrounds * self.positions * self.flips

    def describe(self) -> str:
        """One line for model cards and logs."""
        h, w = self.shape
        scenes = "rooms" if self.families is None else "scenes (" + ", ".join(self.families[0]) + ")"
        return (
            f"maskdepth synthetic scenes (seed {self.seed}): {self.backgrounds} {scenes} x {self.foregrounds} "
            f"objects x {self.positions} positions x {self.flips} flips = {len(self)} samples at {h}x{w}"
            + (f", two shots ({self.two_shot.describe()})" if self.two_shot else "")
        )

    def background_index(self, i: int) -> int:
        """Which background sample ``i`` uses."""
        return i // (self.foregrounds * self.positions * self.flips)

    def family(self, b: int) -> str:
        """The scene family of background ``b`` ("room" for the seed-like rooms).

        With a classic family in the mix this is b's other family: see :meth:`sample_family`.
        """
        return "room" if self.families is None else family_of(b, *self._by_background)

    def sample_family(self, i: int) -> str:
        """The scene family of sample ``i``: the classic one for its share of samples, else its background's."""
        return self._sample_family(i, self._streams(i)["family"])

    def _sample_family(self, i: int, rng: np.random.Generator) -> str:
        if self._classic is not None:
            name, share = self._classic
            if rng.random() < share:
                return name
        return self.family(self.background_index(i))

    def _streams(self, i: int) -> dict[str, np.random.Generator]:
        """Sample ``i``'s named random streams (:data:`STREAMS`)."""
        children = np.random.SeedSequence([self.seed, i]).spawn(len(STREAMS))
        return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)}

    def _placement(self, b: int, f: int, pos: int) -> np.random.Generator:
        """Where object ``f`` stands at position ``pos`` on background ``b``: one stream for the flipped
        pair (the seed's recipe). Keyed as the room scenes always were, so numbers measured on them
        (the model card, BENCHMARKS.md, comparisons/default) reproduce."""
        return np.random.default_rng([self.seed, 3, b, f, pos])

    def _background(self, b: int, family: str | None = None) -> tuple[Background, np.ndarray]:
        """Background ``b`` (of ``family``, default b's own) and its rgb at the output size (H, W, 3), cached."""
        family = family or self.family(b)
        cached = self._bg_cache.get((family, b))
        if cached is None:
            if len(self._bg_cache) >= self.cache_size:  # bound memory for large datasets
                self._bg_cache.pop(next(iter(self._bg_cache)))
            if self.families is None:
                bg = render_background(self.seed, b, self.size)
            else:
                bg = FAMILIES[family].render(self.seed, b, self.shape)
            cached = self._bg_cache[(family, b)] = (bg, downsample(bg.rgb, SUPERSAMPLE))
        return cached

    def _scene(
        self,
        bg: Background,
        family: Family,
        f: int,
        flip: bool,
        rng: np.random.Generator,
        streams: dict[str, np.random.Generator],
    ) -> tuple[Background, dict[str, np.ndarray]]:
        """A scene family's composite at render resolution (scene objects, pasted objects, camouflage)
        and the background with its scene objects; ``rng`` is the placement stream."""
        scene_rng = streams["scene"]
        in_scene = scene_rng.integers(self.foregrounds, size=scene_rng.integers(0, family.scene_objects + 1))
        if len(in_scene):
            bg = furnish(bg, self.seed, family, in_scene.tolist(), scene_rng)
        extras = rng.integers(self.foregrounds, size=rng.integers(0, family.extra_objects + 1))
        camo = streams["camouflage"]
        worn = self.two_shot is not None and camo.random() < self.two_shot.camouflage_p
        comp = compose(
            bg, self.seed, family, [f, *extras.tolist()], rng, flip=flip, camouflage=camo if worn else None
        )
        if scene_rng.random() < NOTHING_PASTED:  # the scene twice: empty mask, depth from the photo alone
            comp.update(fg_bg=bg.rgb, mask=np.zeros(bg.z.shape, np.float32), z=bg.z)
        return bg, comp

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} out of range for {len(self)} samples")
        rest, flip = divmod(i, self.flips)
        rest, pos = divmod(rest, self.positions)
        b, f = divmod(rest, self.foregrounds)
        streams = self._streams(i)
        name = self._sample_family(i, streams["family"])
        bg, bg_rgb = self._background(b, name)
        rng = self._placement(b, f, pos)
        family = None if self.families is None else FAMILIES[name]
        scene = family is not None and not family.classic  # else the seed-like sample: one exact paste
        k = SUPERSAMPLE
        if scene:
            furnished, comp = self._scene(bg, family, f, bool(flip), rng, streams)
            if furnished is not bg:
                bg, bg_rgb = furnished, downsample(furnished.rgb, k)
        else:
            comp = composite(bg, make_foreground(self.seed, f), rng, flip=bool(flip))
        mask = (downsample(comp["mask"], k) >= 0.5).astype(np.float32)
        # Average inverse depth (the stored quantity), not z, so edges blend like the images.
        depth = downsample(depth_from_z(comp["z"]), k)
        fg_bg = downsample(comp["fg_bg"], k)
        if scene and rng.random() < family.defocus:
            focus = float(depth_from_z(np.float32(comp["focus_z"])))
            strength = rng.uniform(2, 8) * min(self.shape) / 64
            bg_rgb = defocus(bg_rgb, downsample(depth_from_z(bg.z), k), focus, strength)
            fg_bg = defocus(fg_bg, depth, focus, strength)
        shots = self.two_shot
        if shots is not None and scene and streams["relight"].random() < shots.relight_p:
            bg_rgb, fg_bg = relight([bg_rgb, fg_bg], streams["relight"])
        # Two shots for the rooms and the scene families; the mix's classic rooms stay exact pastes.
        if shots is not None and (family is None or scene) and streams["clean"].random() >= shots.clean_p:
            rendered = bg_rgb
            bg_rgb, fg_bg = two_shots(bg_rgb, fg_bg, streams["shots"], mask, shots)
            # A handheld re-shot registered as prediction does; a pair registration cannot match keeps
            # its ordinary two-shot background.
            if shots.handheld_p and streams["handheld"].random() < shots.handheld_p:
                registered = registered_shot(rendered, fg_bg, streams["handheld"])
                bg_rgb = bg_rgb if registered is None else registered.bg
        return {
            "bg": torch.from_numpy(bg_rgb).permute(2, 0, 1).contiguous(),
            "fg_bg": torch.from_numpy(fg_bg).permute(2, 0, 1).contiguous(),
            "mask": torch.from_numpy(mask)[None],
            "depth": torch.from_numpy(depth)[None],
        }

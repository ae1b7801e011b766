"""Scene families: which kinds of scene the generator draws, their share of the mix, and the held-out one.

:data:`FAMILIES` is the one place that states them. Each family renders a background with exact
depth (see :data:`maskdepth.data.geometry.DEPTH_CONVENTION`) and a surface objects stand on.
``split="heldout"`` marks a family used only by evaluation: it has no share of the training
mix, so a model trained on ``families="all"`` never sees it. :data:`MIXES` names the mixes a user
picks from (``--scene-families``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from maskdepth.data.families.outdoor import render_outdoor, render_street
from maskdepth.data.families.room import render_background, render_corridor, render_racks, render_wall
from maskdepth.data.families.tabletop import render_tabletop
from maskdepth.data.geometry import Background

GOLDEN = 0.6180339887498949  # low-discrepancy walk over the mix: every family shows up early


@dataclass(frozen=True)
class Family:
    """One kind of scene and how the generator uses it."""

    render: Callable[[int, int, tuple[int, int]], Background]  # (seed, index, (H, W)) -> Background
    weight: float  # share of a mix, normalised over the mix's families (0: held out); see `classic` for how it is drawn
    split: str  # "train" or "heldout"
    object_scale: float = 1.0  # object heights (0.5-1.7 m) are multiplied by this
    extra_objects: int = 2  # up to this many more pasted objects, at other depths (they may occlude)
    scene_objects: int = 2  # up to this many objects that belong to the scene (in both photos, not the mask)
    defocus: float = 0.25  # probability of depth-of-field blur (focused on the main object)
    # The seed-like room samples (scene_families="rooms"): one object, its exact paste, no two-shot
    # effects. Kept in the mix so a model trained on it keeps its depth scale on exact pastes in
    # rooms (docs/research.md, "Depth on synthetic scenes").
    # Its share is drawn per sample, on every background (SyntheticScenes.sample_family): a mix of
    # 100 backgrounds trains on all 100 rooms; the other families share out the backgrounds by
    # weight (SyntheticScenes.family).
    classic: bool = False


FAMILIES: dict[str, Family] = {
    "classic_room": Family(render_background, 0.20, "train", extra_objects=0, defocus=0.0, classic=True),
    "room": Family(render_background, 0.16, "train"),
    "corridor": Family(render_corridor, 0.08, "train"),
    "outdoor": Family(render_outdoor, 0.20, "train", extra_objects=3),
    "tabletop": Family(render_tabletop, 0.16, "train", object_scale=0.6, defocus=0.5),
    # Facing a wall with shelves and pictures, furniture and objects in front: the framing of most indoor
    # photos (the subject nearer than the wall behind it; no vanishing point in the middle of the frame).
    "wall": Family(render_wall, 0.20, "train", scene_objects=3),
    # Facing shelving racks loaded with boxes (a garage, a pantry, a shop): busy clutter high in the
    # frame that is as far as the wall behind it, furniture and objects standing in front.
    "racks": Family(render_racks, 0.25, "train", scene_objects=3),
    "street": Family(render_street, 0.0, "heldout"),  # evaluation only
}
HELDOUT_FAMILY = "street"
# Named mixes (--scene-families; "rooms", the seed-like generator, is SyntheticScenes' own default).
# A tuple of names takes the FAMILIES weights.
MIXES: dict[str, tuple[str, ...]] = {
    "all": tuple(n for n, f in FAMILIES.items() if f.split == "train"),  # the shipped model's mix
    "indoor": ("classic_room", "room", "corridor", "wall", "racks"),  # the room-scale families
    "outdoor": ("outdoor",),  # open ground under a sky, with haze
    "heldout": tuple(n for n, f in FAMILIES.items() if f.split == "heldout"),  # evaluation only
}


def resolve(families: str | Sequence[str] | Mapping[str, float]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Family names and mix weights (summing to 1) for a mix name (:data:`MIXES`) or a list of names.

    A list of names keeps their FAMILIES weights (equal shares if all are 0, e.g. only the held-out one);
    a mapping of names to weights keeps its own.
    """
    if isinstance(families, str) and families in MIXES:
        families = MIXES[families]
    names = (families,) if isinstance(families, str) else tuple(families)
    unknown = [n for n in names if n not in FAMILIES]
    if unknown or not names:
        valid = ", ".join([*MIXES, *FAMILIES])
        raise ValueError(f"unknown scene families {unknown or names!r}; valid: {valid}")
    weights = (
        list(families.values()) if isinstance(families, Mapping) else [FAMILIES[n].weight for n in names]
    )
    total = sum(weights)
    return names, tuple(w / total for w in weights) if total > 0 else tuple(1 / len(names) for _ in names)


def family_of(index: int, names: Sequence[str], weights: Sequence[float]) -> str:
    """The family of background ``index``: a golden-ratio walk over the cumulative weights (deterministic)."""
    u = (0.5 + index * GOLDEN) % 1.0
    acc = 0.0
    for name, w in zip(names, weights, strict=True):
        acc += w
        if u < acc:
            return name
    return names[-1]

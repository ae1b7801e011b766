"""Datasets: the embedded synthetic scenes and the seed's / plain folder layouts.

:func:`build_dataset` opens the data set a :class:`DataSettings` names (``TrainConfig.data_settings()``),
:func:`describe_dataset` gives its one-line description, :func:`split_parts` cuts a split into
the parts trained one after another (seed variant ii), :func:`spread` picks an evaluation subset
spread over a split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch.utils.data import Dataset, Subset

from maskdepth.data.synthetic import DEPTH_CONVENTION, Z_REF, SyntheticScenes
from maskdepth.data.transforms import JointAugment, model_input, split_dataset
from maskdepth.data.twoshot import TwoShot
from maskdepth.errors import TrainingError

__all__ = [
    "DEPTH_CONVENTION",
    "Z_REF",
    "DataSettings",
    "JointAugment",
    "SyntheticScenes",
    "TwoShot",
    "build_dataset",
    "describe_dataset",
    "model_input",
    "split_dataset",
    "split_parts",
    "spread",
]


@dataclass(frozen=True)
class DataSettings:
    """What :func:`build_dataset` needs to open a data set; the synthetic fields matter for "synthetic" only."""

    dataset: str  # "synthetic" (the embedded generator) or a folder in the seed's or plain layout
    size: int  # side of the square samples, pixels
    backgrounds: int
    foregrounds: int
    positions: int
    flips: bool
    seed: int  # the generator's seed (TrainConfig.data_seed)
    scenes: str  # "rooms" or a mix of maskdepth.data.families.MIXES
    two_shot: TwoShot | None  # None: one image and the same image with a paste


def build_dataset(settings: DataSettings) -> Dataset:
    """The data set ``settings`` name: the synthetic generator or a folder (seed or plain layout)."""
    if settings.dataset == "synthetic":
        return SyntheticScenes(
            backgrounds=settings.backgrounds,
            foregrounds=settings.foregrounds,
            positions=settings.positions,
            flips=settings.flips,
            size=settings.size,
            seed=settings.seed,
            families=settings.scenes,
            two_shot=settings.two_shot or False,
        )
    from maskdepth.data.folder import open_folder_dataset

    return open_folder_dataset(settings.dataset, size=settings.size)


def describe_dataset(ds: Dataset) -> str:
    """One line for logs and model cards."""
    describe = getattr(ds, "describe", None)
    return describe() if callable(describe) else f"{type(ds).__name__} with {len(ds)} samples"


def spread(indices: list[int], n: int) -> list[int]:
    """``n`` of ``indices`` evenly spaced over the whole list (all of them if n >= len).

    Samples are ordered by background, so the first ``n`` of a split would all show one or two
    scenes; evaluation subsets (training's, ``evaluate --limit``) take a spread instead."""
    if n >= len(indices):
        return list(indices)
    return [indices[i * len(indices) // n] for i in range(n)]


def split_parts(subset: Subset, parts: int) -> list[Subset]:
    """Cut a split into ``parts`` contiguous pieces, like the seed's 5 zip sets."""
    idx = list(subset.indices)
    if parts > len(idx):
        raise TrainingError(f"cannot cut {len(idx)} training samples into {parts} parts; use fewer parts")
    bounds = np.linspace(0, len(idx), parts + 1).round().astype(int)
    return [Subset(subset.dataset, idx[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

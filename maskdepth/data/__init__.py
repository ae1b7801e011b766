"""Datasets: the embedded synthetic scenes and the seed's / plain folder layouts.

:func:`build_dataset` opens the data set a :class:`~maskdepth.training.config.TrainConfig` names,
:func:`describe_dataset` gives its one-line description, :func:`split_parts` cuts a split into
the parts trained one after another (seed variant ii), :func:`spread` picks an evaluation subset
spread over a split.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from torch.utils.data import Dataset, Subset

from maskdepth.data.synthetic import DEPTH_CONVENTION, Z_REF, SyntheticScenes
from maskdepth.data.transforms import JointAugment, model_input, split_dataset
from maskdepth.data.twoshot import two_shot_settings
from maskdepth.errors import TrainingError

if TYPE_CHECKING:
    from maskdepth.training.config import TrainConfig

__all__ = [
    "DEPTH_CONVENTION",
    "Z_REF",
    "JointAugment",
    "SyntheticScenes",
    "build_dataset",
    "describe_dataset",
    "model_input",
    "split_dataset",
    "split_parts",
    "spread",
]


def build_dataset(cfg: TrainConfig) -> Dataset:
    """The dataset a config names: the synthetic generator or a folder (seed or plain layout)."""
    if cfg.dataset == "synthetic":
        return SyntheticScenes(
            backgrounds=cfg.backgrounds,
            foregrounds=cfg.foregrounds,
            positions=cfg.positions,
            flips=cfg.flips,
            size=cfg.size,
            seed=cfg.data_seed,
            families=None if cfg.scene_families == "rooms" else cfg.scene_families,
            two_shot=two_shot_settings(cfg.two_shot_recipe) if cfg.two_shot else False,
        )
    from maskdepth.data.folder import open_folder_dataset

    return open_folder_dataset(cfg.dataset, size=cfg.size)


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

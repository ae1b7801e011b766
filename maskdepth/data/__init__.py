"""Datasets: the embedded synthetic scenes and the seed's / plain folder layouts."""

from __future__ import annotations

from maskdepth.data.synthetic import DEPTH_CONVENTION, Z_REF, SyntheticScenes
from maskdepth.data.transforms import JointAugment, model_input, split_dataset

__all__ = [
    "DEPTH_CONVENTION",
    "Z_REF",
    "JointAugment",
    "SyntheticScenes",
    "model_input",
    "split_dataset",
]

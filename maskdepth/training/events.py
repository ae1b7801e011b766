"""What the training loop reports: events during a run, its result at the end.

The CLI (tqdm), the app (plots, previews) and :mod:`maskdepth.compare.comparison` consume these;
``from maskdepth.training.loop import StepEvent, ...`` works too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np


@dataclass
class StepEvent:
    """After every optimiser step."""

    step: int  # steps done in this run
    total_steps: int | None  # None when the budget is time only
    epoch: int
    part: int
    progress: float  # 0..1 of the budget
    loss: float
    mask_loss: float
    depth_loss: float
    lr: float
    images_per_s: float
    elapsed_s: float
    eta_s: float | None
    precision: str = "fp32"  # of the training forward: "bf16" or "fp32"
    bf16_speedup: float | None = None  # measured fp32/bf16 step time when auto chose by probe


@dataclass
class EvalEvent:
    """After each evaluation on the test split."""

    step: int
    epoch: int
    part: int
    progress: float
    train_loss: float  # mean over the steps since the previous evaluation
    train_mask_loss: float
    train_depth_loss: float
    test_loss: float
    test_mask_loss: float
    test_depth_loss: float
    metrics: dict[str, float]
    lr: float
    is_best: bool
    elapsed_s: float


@dataclass
class SamplesEvent:
    """Predictions on a few fixed test samples; arrays are HxW(x3) float in [0, 1]."""

    step: int
    samples: list[dict[str, np.ndarray]]  # keys: fg_bg, mask, mask_pred, depth, depth_pred


@dataclass
class DoneEvent:
    """The run ended."""

    run_dir: str
    reason: Literal["budget", "stopped", "nan", "error"]
    steps: int
    elapsed_s: float
    best: EvalEvent | None
    message: str
    precision: str = "fp32"  # of the training forward: "bf16" or "fp32"


Event = StepEvent | EvalEvent | SamplesEvent | DoneEvent


@dataclass
class TrainResult:
    run_dir: Path
    reason: str
    steps: int
    elapsed_s: float
    best_metrics: dict[str, float] = field(default_factory=dict)
    best_test_loss: float | None = None
    message: str = ""
    precision: str = "fp32"

"""The budget, the optimiser and the learning-rate schedules of the training loop (:mod:`maskdepth.training.loop`)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.utils.data import Subset

from maskdepth.training.config import TrainConfig


class Schedule:
    """One interface over the schedules: OneCycle follows budget progress, StepLR epochs,
    ReduceLROnPlateau the test loss.

    OneCycle is defined on progress in [0, 1] (not on a step count) so that it also
    works with a budget in minutes, where the number of steps is not known up front.
    """

    def __init__(self, kind: str, optimizer: torch.optim.Optimizer, peak_lr: float, warmup: bool = True):
        self.kind, self.optimizer, self.peak_lr = kind, optimizer, peak_lr
        self.warmup = 0.25 if warmup else 0.0
        self.torch_scheduler: Any = None
        if kind == "plateau":
            self.torch_scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, factor=0.5, patience=1
            )
        elif kind == "step":
            self.torch_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)

    def on_step(self, progress: float) -> None:
        if self.kind != "onecycle":
            return
        if progress < self.warmup:  # cosine warm-up from peak/25 (torch's OneCycleLR defaults)
            lo, hi, t = self.peak_lr / 25, self.peak_lr, progress / self.warmup
        else:  # cosine anneal to peak/1e4
            lo, hi, t = self.peak_lr, self.peak_lr / 1e4, (progress - self.warmup) / (1 - self.warmup)
        lr = hi + (lo - hi) * (1 + math.cos(math.pi * min(t, 1.0))) / 2
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def on_epoch_end(self) -> None:
        if self.kind == "step":
            self.torch_scheduler.step()

    def on_eval(self, test_loss: float) -> None:
        if self.kind == "plateau":
            self.torch_scheduler.step(test_loss)

    def state_dict(self) -> dict:
        return self.torch_scheduler.state_dict() if self.torch_scheduler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.torch_scheduler is not None and state:
            self.torch_scheduler.load_state_dict(state)


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def optimisation(
    cfg: TrainConfig, model: torch.nn.Module, resume_state: dict | None = None
) -> tuple[torch.optim.Optimizer, Schedule]:
    """The optimiser and schedule for a run; a resume state with ``resume_lr="continue"`` carries
    on its optimiser, scheduler and learning rate (OneCycle anneals on from there, no warm-up)."""
    optimizer = make_optimizer(cfg, model)
    continue_lr = resume_state is not None and cfg.resume_lr == "continue"
    schedule = Schedule(cfg.scheduler, optimizer, cfg.lr, warmup=not continue_lr)
    if continue_lr:
        optimizer.load_state_dict(resume_state["optimizer"])
        schedule.load_state_dict(resume_state.get("scheduler", {}))
        schedule.peak_lr = float(resume_state.get("lr", cfg.lr))
    return optimizer, schedule


class Budget:
    """Steps per epoch, total steps and progress (0..1): the run ends at the first limit reached.

    Under torchrun an epoch is one pass over this process's shard.
    """

    def __init__(self, cfg: TrainConfig, parts: list[Subset], world_size: int):
        def loader_steps(n: int) -> int:  # batches per epoch: the loader drops a last partial batch
            return n // cfg.batch_size if n > cfg.batch_size else 1

        self.parts = cfg.parts
        self.steps_per_epoch = [loader_steps(math.ceil(len(p) / world_size)) for p in parts]
        self.total_steps: int | None = None
        if cfg.steps is not None or cfg.epochs is not None:
            candidates = [cfg.steps] if cfg.steps is not None else []
            if cfg.epochs is not None:
                candidates.append(math.ceil(cfg.epochs * sum(self.steps_per_epoch)))
            self.total_steps = max(1, min(candidates))
        self.seconds = cfg.minutes * 60 if cfg.minutes is not None else None

    def progress(self, step: int, elapsed: float) -> float:
        fractions = []
        if self.total_steps:
            fractions.append(step / self.total_steps)
        if self.seconds:
            fractions.append(elapsed / self.seconds)
        return min(1.0, max(fractions))

    def part(self, progress: float) -> int:
        """The part (seed variant ii) trained at ``progress``."""
        return min(int(progress * self.parts), self.parts - 1)

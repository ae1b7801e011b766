"""The one training loop. The CLI (tqdm) and the app (gr.Progress, plots) both drive it.

    result = train(TrainConfig(...), on_event=print, stop=threading.Event())

Progress is reported as events (:class:`StepEvent`, :class:`EvalEvent`,
:class:`SamplesEvent`, :class:`DoneEvent`); a caller can stop the run between steps by
setting ``stop``. The best weights (lowest test loss) are written atomically to
``out_dir`` in the ``save_pretrained`` layout, with ``last.pt`` for ``--resume``
(:class:`maskdepth.run_writer.RunWriter` owns the run folder). The settings live in
:mod:`maskdepth.config`, the schedules in :mod:`maskdepth.schedule`.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from maskdepth import distributed, precision
from maskdepth.config import OPTIMIZERS, SCHEDULERS, TrainConfig  # noqa: F401 (also maskdepth.train names)
from maskdepth.data import build_dataset, describe_dataset, split_parts  # noqa: F401 (ditto)
from maskdepth.data.fetch import one_thread_batches
from maskdepth.data.transforms import Augmented, JointAugment, model_input, split_dataset
from maskdepth.errors import CheckpointError, TrainingError
from maskdepth.losses import LossConfig, score_batch
from maskdepth.model import WNet
from maskdepth.run_writer import RunWriter, save_weights, write_failure  # noqa: F401 (ditto)
from maskdepth.schedule import Schedule, current_lr, make_optimizer, optimisation

# ---- events ---------------------------------------------------------------------------


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


# ---- set-up ---------------------------------------------------------------------------


@dataclass
class RunData:
    """What a run trains and evaluates on: seeded split, parts, a fixed evaluation subset."""

    parts: list[Subset]
    eval_set: Subset
    preview: dict[str, torch.Tensor]  # 4 fixed test samples for the sample-prediction events
    description: str

    @classmethod
    def of(cls, cfg: TrainConfig) -> RunData:
        dataset = build_dataset(cfg)
        train_split, test_split = split_dataset(dataset, cfg.test_fraction, seed=cfg.seed)
        test = list(test_split.indices)
        eval_n = len(test) if cfg.eval_samples <= 0 else min(cfg.eval_samples, len(test))
        items = [dataset[i] for i in test[:4]]
        preview = {k: torch.stack([it[k] for it in items]) for k in ("bg", "fg_bg", "mask", "depth")}
        return cls(
            split_parts(train_split, cfg.parts),
            Subset(dataset, test[:eval_n]),
            preview,
            describe_dataset(dataset),
        )

    def loader(self, cfg: TrainConfig, part: int, epoch: int, ddp: distributed.Context) -> DataLoader:
        """One epoch over ``part`` (this process's shard under torchrun), augmented and seeded."""
        data: Dataset = self.parts[part]
        if cfg.augment:
            data = Augmented(data, JointAugment(), seed=cfg.seed)
            data.epoch = epoch
        sampler = ddp.sampler(data, seed=cfg.seed, epoch=epoch)  # None: one process sees all
        return DataLoader(
            data,
            batch_size=cfg.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            drop_last=len(sampler if sampler is not None else data) > cfg.batch_size,
            num_workers=cfg.num_workers,
            generator=torch.Generator().manual_seed(cfg.seed + epoch),
        )


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


def _load_resume(cfg: TrainConfig) -> tuple[WNet, dict | None]:
    """Model (and last.pt state, if any) to resume from."""
    path = Path(cfg.resume)
    last = path if path.is_file() else path / "last.pt"
    state = None
    if last.is_file():
        try:
            state = torch.load(last, map_location="cpu", weights_only=True)
        except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as e:
            if last != path:  # a run folder's own last.pt is broken
                raise CheckpointError(
                    f"cannot read {last} to resume (truncated or not a checkpoint: {type(e).__name__}); delete "
                    "it to resume from the run's best weights, or resume from another run"
                ) from e
            # A file that is no resume state: load_model reads it (seed checkpoints) or says what is wrong.
    if isinstance(state, dict) and isinstance(state.get("model_config"), dict) and "model" in state:
        try:
            model = WNet(**state["model_config"])
            model.load_state_dict(state["model"])
        except (TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(
                f"{last} does not hold a usable resume state ({e}); resume from another run"
            ) from e
        return model, state
    from maskdepth.hub import load_model

    return load_model(cfg.resume), None


def build_model(cfg: TrainConfig, device: torch.device) -> tuple[WNet, dict | None]:
    """The W-Net to train (resumed, or new from the config) in training mode, and any resume state."""
    model, state = _load_resume(cfg) if cfg.resume else (None, None)
    if model is None:
        model = WNet(in_channels=cfg.in_channels, base_width=cfg.base_width, image_size=cfg.size)
    model.image_size = cfg.size
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.to(device).train(), state


def to_batch(
    batch: dict[str, torch.Tensor], channels_last: bool, device: torch.device | None = None
) -> dict[str, torch.Tensor]:
    if device is not None and device.type != "cpu":  # one GPU per process under torchrun + nccl
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    if channels_last:
        return {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch.items()}
    return batch


# ---- the step, evaluation, previews -----------------------------------------------------


def train_step(
    net: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    in_channels: int,
    loss_cfg: LossConfig,
    optimizer: torch.optim.Optimizer,
    ddp: distributed.Context,
    forward_dtype: str,
) -> torch.Tensor:
    """One optimiser step; returns the effective batch's [total, mask, depth] loss.

    A non-finite loss (on any rank: all stop together) skips backward and the update.
    The forward may run in bfloat16; the losses are always computed in float32.
    """
    with precision.autocast(forward_dtype, ddp.device):
        out = net(model_input(batch["bg"], batch["fg_bg"], in_channels))
    losses = score_batch(type(out)(*(t.float() for t in out)), batch, loss_cfg)
    seen = ddp.mean(torch.stack([losses.total.detach(), losses.mask.detach(), losses.depth.detach()]))
    if torch.isfinite(seen[0]):
        optimizer.zero_grad(set_to_none=True)
        losses.total.backward()
        optimizer.step()
    return seen


def evaluate_run(model: WNet, data: RunData, cfg: TrainConfig, ddp: distributed.Context):
    """Score the model (in float32) on the run's evaluation subset, sharded under torchrun."""
    from maskdepth.evaluate import evaluate

    ddp.broadcast_state(model, buffers_only=True)  # score rank 0's BatchNorm statistics everywhere
    return evaluate(
        model,
        ddp.shard(data.eval_set),
        loss_cfg=cfg.loss_config(),
        batch_size=max(cfg.batch_size, 32),
        reduce=ddp.all_reduce_sum if ddp.enabled else None,
    )


@torch.inference_mode()
def _sample_predictions(model: WNet, batch: dict[str, torch.Tensor]) -> list[dict[str, np.ndarray]]:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = model(model_input(batch["bg"], batch["fg_bg"], model.in_channels).to(device))
    out = type(out)(*(t.cpu() for t in out))
    model.train(was_training)
    samples = []
    for i in range(batch["fg_bg"].shape[0]):
        samples.append(
            {
                "fg_bg": batch["fg_bg"][i].permute(1, 2, 0).numpy(),
                "mask": batch["mask"][i, 0].numpy(),
                "mask_pred": torch.sigmoid(out.mask[i, 0]).numpy(),
                "depth": batch["depth"][i, 0].numpy(),
                "depth_pred": torch.sigmoid(out.depth[i, 0]).numpy(),
            }
        )
    return samples


# ---- the loop ---------------------------------------------------------------------------


def train(
    cfg: TrainConfig,
    on_event: Callable[[Event], None] | None = None,
    stop: threading.Event | None = None,
    *,
    command: str | None = None,
) -> TrainResult:
    """Train a W-Net as ``cfg`` says; returns when the budget is spent or ``stop`` is set.

    ``command`` (what reproduces the run, e.g. the CLI line) is written into the run's model
    card at the end; without it no card is written. Under torchrun every process calls this
    and trains with DistributedDataParallel (docs/scaling.md); only rank 0 gets events and
    writes the run folder.
    """
    ddp = distributed.setup()
    try:
        emit = on_event if on_event is not None and ddp.is_main else (lambda event: None)
        return _train(cfg, emit, stop or threading.Event(), ddp, command)
    finally:
        distributed.cleanup(ddp)


class _Window:
    """Mean train losses since the previous evaluation."""

    def __init__(self) -> None:
        self.sums, self.n = [0.0, 0.0, 0.0], 0

    def add(self, losses: list[float]) -> None:
        self.sums = [s + v for s, v in zip(self.sums, losses, strict=True)]
        self.n += 1

    def take(self) -> list[float]:
        means = [s / max(self.n, 1) for s in self.sums]
        self.__init__()
        return means


def _train(
    cfg: TrainConfig,
    emit: Callable[[Event], None],
    stop: threading.Event,
    ddp: distributed.Context,
    command: str | None,
) -> TrainResult:
    start = time.perf_counter()
    if cfg.scale_lr and ddp.enabled:
        # Linear scaling rule. The config records the lr actually used (and scale_lr off), so
        # that re-running its train_config.json does not scale twice.
        cfg = dataclasses.replace(cfg, lr=cfg.lr * ddp.world_size, scale_lr=False)
    writer = RunWriter(Path(cfg.out_dir), enabled=ddp.is_main)  # fails now if it cannot write there
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    with writer.discard_if_unused():  # a run that never started leaves no empty folder behind
        data = RunData.of(cfg)
        model, resume_state = build_model(cfg, ddp.device)
    net = ddp.wrap(model, cfg.sync_bn)  # steps call net (DDP under torchrun); the rest uses model
    optimizer, schedule = optimisation(cfg, model, resume_state)
    loss_cfg, budget = cfg.loss_config(), Budget(cfg, data.parts, ddp.world_size)
    dtype = precision.resolve(cfg.precision, ddp.device)
    writer.write_config(cfg)

    best: EvalEvent | None = None
    history: list[dict] = []
    window = _Window()
    step = epoch = part = images = 0
    rate_start, reason, message = time.perf_counter(), None, ""

    def clock() -> float:  # every rank agrees on the clock (time budgets, schedules)
        return ddp.agree(False, time.perf_counter() - start)[1]

    def run_eval() -> None:
        nonlocal best
        result, (train_loss, train_mask, train_depth) = evaluate_run(model, data, cfg, ddp), window.take()
        # A diverged evaluation (NaN/inf loss) is never "best": its weights must not be saved.
        is_best = math.isfinite(result.loss) and (best is None or result.loss < best.test_loss)
        elapsed = time.perf_counter() - start
        event = EvalEvent(
            step, epoch, part, budget.progress(step, elapsed), train_loss, train_mask, train_depth,
            result.loss, result.mask_loss, result.depth_loss, result.metrics, current_lr(optimizer), is_best,
            time.perf_counter() - start,
        )  # fmt: skip
        schedule.on_eval(result.loss)
        history.append(dataclasses.asdict(event))
        if is_best:
            writer.write_best(model)
            best = event  # only once its weights are on disk (a failed write keeps the previous best)
        writer.write_metrics(best, history, data.description, dtype)
        emit(event)

    try:
        while reason is None:  # parts one after another, epochs within a part
            if (target := budget.part(budget.progress(step, clock()))) != part:
                # Next part (seed variant ii): go on from the best weights so far; "restart" resets the lr.
                part = target
                writer.load_best(model)
                ddp.broadcast_state(model)  # the other ranks may not see rank 0's run folder
                if cfg.resume_lr == "restart":
                    optimizer = make_optimizer(cfg, model)
                    schedule = Schedule(cfg.scheduler, optimizer, cfg.lr)
            loader = data.loader(cfg, part, epoch, ddp)
            for batch in one_thread_batches(loader) if cfg.num_workers == 0 else loader:
                # Every rank must leave the loop at the same step: agree on stop and on the clock.
                stopping, elapsed = ddp.agree(stop.is_set(), time.perf_counter() - start)
                if stopping:
                    reason = "stopped"
                    break
                batch = to_batch(batch, cfg.channels_last, ddp.device)
                schedule.on_step(budget.progress(step, elapsed))
                seen = train_step(net, batch, model.in_channels, loss_cfg, optimizer, ddp, dtype)
                if not torch.isfinite(seen[0]):
                    reason, message = "nan", _nan_message(seen[0].item(), step, best)
                    break
                step += 1
                images += batch["fg_bg"].shape[0] * ddp.world_size
                window.add(losses := seen.tolist())
                progress = budget.progress(step, elapsed := clock())
                emit(
                    StepEvent(
                        step,
                        budget.total_steps,
                        epoch,
                        part,
                        progress,
                        *losses,
                        current_lr(optimizer),
                        images / max(time.perf_counter() - rate_start, 1e-9),
                        elapsed,
                        elapsed * (1 - progress) / progress if progress > 0 else None,
                    )  # fmt: skip
                )
                if cfg.sample_every and step % cfg.sample_every == 0 and ddp.is_main:
                    emit(SamplesEvent(step=step, samples=_sample_predictions(model, data.preview)))
                if cfg.eval_every and step % cfg.eval_every == 0:
                    run_eval()
                if progress >= 1.0:
                    reason = "budget"
                    break
                if budget.part(progress) != part:
                    break  # move on to the next part
            else:
                epoch += 1
                schedule.on_epoch_end()
                if not cfg.eval_every:
                    run_eval()
        # Final evaluation (unless one just ran), sample previews and the resume state.
        if reason != "nan" and (not history or history[-1]["step"] != step) and step > 0:
            run_eval()
        if reason != "nan":
            writer.write_last(model, optimizer, schedule, step, epoch, cfg)
            if ddp.is_main:
                emit(SamplesEvent(step=step, samples=_sample_predictions(model, data.preview)))
        writer.write_card(command)
    except OSError as e:
        message = writer.failure(e)
        emit(DoneEvent(str(writer.run_dir), "error", step, time.perf_counter() - start, best, message, dtype))
        raise TrainingError(message) from e

    elapsed = time.perf_counter() - start
    if not message:
        message = f"{'stopped' if reason == 'stopped' else 'finished'} after {step} steps in {elapsed:.0f} s"
        if best is not None:
            message += f"; best test loss {best.test_loss:.4f} at step {best.step}"
    emit(DoneEvent(str(writer.run_dir), reason, step, elapsed, best, message, dtype))
    return TrainResult(
        run_dir=writer.run_dir,
        reason=reason,
        steps=step,
        elapsed_s=elapsed,
        best_metrics=dict(best.metrics) if best else {},
        best_test_loss=best.test_loss if best else None,
        message=message,
        precision=dtype,
    )


def _nan_message(loss: float, step: int, best: EvalEvent | None) -> str:
    kept = (
        f"the best weights so far (step {best.step}) were kept"
        if best is not None
        else "no weights were saved (no evaluation had a finite loss yet)"
    )
    return f"the loss became {loss} at step {step + 1}: training stopped and {kept}; lower the learning rate"

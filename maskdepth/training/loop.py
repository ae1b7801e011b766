"""The one training loop. The CLI (tqdm) and the app (gr.Progress, plots) both drive it.

    result = train(TrainConfig(...), on_event=print, stop=threading.Event())

Progress is reported as events (:class:`StepEvent`, :class:`EvalEvent`,
:class:`SamplesEvent`, :class:`DoneEvent`); a caller can stop the run between steps by
setting ``stop``. The best weights (lowest test loss) are written atomically to
``out_dir`` in the ``save_pretrained`` layout, with ``last.pt`` for ``--resume``
(:class:`maskdepth.training.run_writer.RunWriter` owns the run folder). The settings live in
:mod:`maskdepth.training.config`, the schedules in :mod:`maskdepth.training.schedule`.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset

from maskdepth.data import build_dataset, describe_dataset, split_parts, spread  # noqa: F401 (ditto)
from maskdepth.data.fetch import one_thread_batches
from maskdepth.data.multiscale import AtShapes, ShapeBatches, batch_shapes
from maskdepth.data.transforms import Augmented, JointAugment, model_input, split_dataset
from maskdepth.errors import TrainingError
from maskdepth.hub.pretrained import WNet
from maskdepth.model.losses import LossConfig, score_batch
from maskdepth.training import distributed, precision
from maskdepth.training.config import OPTIMIZERS, SCHEDULERS, TrainConfig  # noqa: F401 (also maskdepth.training.loop names)
from maskdepth.training.evaluate import sample_predictions
from maskdepth.training.events import DoneEvent, EvalEvent, Event, SamplesEvent, StepEvent, TrainResult
from maskdepth.training.run_writer import RunWriter, load_resume, save_weights, write_failure  # noqa: F401 (ditto)
from maskdepth.training.schedule import Budget, Schedule, current_lr, make_optimizer, optimisation

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
        dataset = build_dataset(cfg.data_settings())
        train_split, test_split = split_dataset(dataset, cfg.test_fraction, seed=cfg.seed)
        test = list(test_split.indices)  # sorted, so neighbours share a background: take a spread
        eval_n = len(test) if cfg.eval_samples <= 0 else min(cfg.eval_samples, len(test))
        items = [dataset[i] for i in spread(test, 4)]
        preview = {k: torch.stack([it[k] for it in items]) for k in ("bg", "fg_bg", "mask", "depth")}
        return cls(
            split_parts(train_split, cfg.parts),
            Subset(dataset, spread(test, eval_n)),
            preview,
            describe_dataset(dataset),
        )

    def loader(self, cfg: TrainConfig, part: int, epoch: int, ddp: distributed.Context) -> DataLoader:
        """One epoch over ``part`` (this process's shard under torchrun), augmented and seeded."""
        data: Dataset = self.parts[part]
        shapes = batch_shapes(cfg.min_size, cfg.size) if cfg.min_size else None
        if shapes:
            data = AtShapes(data, shapes)  # indexed (position, (h, w)): each batch its own shape
        if cfg.augment:
            data = Augmented(data, JointAugment(), seed=cfg.seed)
            data.epoch = epoch
        sampler = ddp.sampler(data, seed=cfg.seed, epoch=epoch)  # None: one process sees all
        generator = torch.Generator().manual_seed(cfg.seed + epoch)
        drop_last = len(sampler if sampler is not None else data) > cfg.batch_size
        if shapes:
            order = sampler if sampler is not None else RandomSampler(data, generator=generator)
            batches = ShapeBatches(order, cfg.batch_size, drop_last, shapes, seed=cfg.seed + epoch)
            return DataLoader(data, batch_sampler=batches, num_workers=cfg.num_workers)
        return DataLoader(
            data,
            batch_size=cfg.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=cfg.num_workers,
            generator=generator,
        )


def build_model(cfg: TrainConfig, device: torch.device) -> tuple[WNet, dict | None]:
    """The W-Net to train (resumed, or new from the config) in training mode, and any resume state."""
    model, state = load_resume(cfg.resume) if cfg.resume else (None, None)
    if model is None:
        model = WNet(in_channels=cfg.in_channels, base_width=cfg.base_width, image_size=cfg.size)
        seen = (cfg.min_size or cfg.size, cfg.size)
    else:  # progressive resizing: the saved range covers every stage (64 -> 128 -> 224 ...)
        low, high = model.cfg.size_range
        seen = (min(low, cfg.min_size or cfg.size), max(high, cfg.size))
    model.set_sizes(cfg.size, seen)
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
    from maskdepth.training.evaluate import evaluate

    ddp.broadcast_state(model, buffers_only=True)  # score rank 0's BatchNorm statistics everywhere
    return evaluate(
        model,
        ddp.shard(data.eval_set),
        loss_cfg=cfg.loss_config(),
        batch_size=max(cfg.batch_size, 32),
        reduce=ddp.all_reduce_sum if ddp.enabled else None,
    )


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
    run = _Run(cfg, ddp, emit, writer, data, model, resume_state, start)
    writer.write_config(cfg)

    reason, message = None, ""
    try:
        while reason is None:  # parts one after another, epochs within a part
            if (part := run.budget.part(run.progress(run.clock()))) != run.part:
                run.next_part(part)
            loader = data.loader(cfg, run.part, run.epoch, ddp)
            for batch in one_thread_batches(loader) if cfg.num_workers == 0 else loader:
                # Every rank must leave the loop at the same step: agree on stop and on the clock.
                stopping, elapsed = ddp.agree(stop.is_set(), time.perf_counter() - start)
                if stopping:
                    reason = "stopped"
                    break
                batch = to_batch(batch, cfg.channels_last, ddp.device)
                run.schedule.on_step(run.progress(elapsed))
                seen = train_step(
                    run.net, batch, model.in_channels, run.loss_cfg, run.optimizer, ddp, run.dtype
                )
                if not torch.isfinite(seen[0]):
                    reason, message = "nan", run.nan_message(seen[0].item())
                    break
                progress = run.stepped(batch["fg_bg"].shape[0], seen.tolist())
                if cfg.eval_every and run.step % cfg.eval_every == 0:
                    run.evaluate()
                if progress >= 1.0:
                    reason = "budget"
                    break
                if run.budget.part(progress) != run.part:
                    break  # move on to the next part
            else:
                run.epoch += 1
                run.schedule.on_epoch_end()
                if not cfg.eval_every:
                    run.evaluate()
        # Final evaluation (unless one just ran), the resume state, previews and the card.
        if reason != "nan" and (not run.history or run.history[-1]["step"] != run.step) and run.step > 0:
            run.evaluate()
        if reason != "nan":
            writer.write_last(model, run.optimizer, run.schedule, run.step, run.epoch, cfg)
            run.emit_samples()
        writer.write_card(command)
    except OSError as e:
        message = writer.failure(e)
        run.done("error", message)
        raise TrainingError(message) from e
    return run.done(reason, message)


class _Run:
    """A run between steps: model, optimiser and schedule, counters, evaluations, the events."""

    def __init__(self, cfg, ddp, emit, writer, data, model, resume_state, start) -> None:
        self.cfg, self.ddp, self.emit, self.writer, self.data, self.model = (
            cfg,
            ddp,
            emit,
            writer,
            data,
            model,
        )
        self.net = ddp.wrap(model, cfg.sync_bn)  # steps call net (DDP under torchrun); the rest uses model
        self.optimizer, self.schedule = optimisation(cfg, model, resume_state)
        self.loss_cfg, self.budget = cfg.loss_config(), Budget(cfg, data.parts, ddp.world_size)
        # auto: a short fp32-vs-bf16 probe of this model (cached per machine); every rank agrees.
        agree = (lambda ratio: float(ddp.mean(torch.tensor([ratio]))[0])) if ddp.enabled else None
        self.precision = precision.choose(
            cfg.precision,
            model,
            ddp.device,
            batch_size=cfg.batch_size,
            size=cfg.size,
            channels_last=cfg.channels_last,
            agree=agree,
        )
        self.dtype = self.precision.dtype
        self.step = self.epoch = self.part = self.images = 0
        self.best: EvalEvent | None = None
        self.history: list[dict] = []
        self.window = [0.0, 0.0, 0.0, 0]  # sums of the train losses since the last evaluation, steps
        self.start, self.rate_start = start, time.perf_counter()

    def clock(self) -> float:
        """Seconds since the start, as every rank agrees (time budgets and schedules read it)."""
        return self.ddp.agree(False, time.perf_counter() - self.start)[1]

    def progress(self, elapsed: float) -> float:
        return self.budget.progress(self.step, elapsed)

    def next_part(self, part: int) -> None:
        """Next part (seed variant ii): go on from the best weights so far; "restart" resets the lr."""
        self.part = part
        self.writer.load_best(self.model)
        self.ddp.broadcast_state(self.model)  # the other ranks may not see rank 0's run folder
        if self.cfg.resume_lr == "restart":
            self.optimizer = make_optimizer(self.cfg, self.model)
            self.schedule = Schedule(self.cfg.scheduler, self.optimizer, self.cfg.lr)

    def stepped(self, batch_size: int, losses: list[float]) -> float:
        """Count a step of ``losses`` [total, mask, depth]; emit its events; returns the progress."""
        self.step += 1
        self.images += batch_size * self.ddp.world_size
        self.window = [*(s + v for s, v in zip(self.window[:3], losses, strict=True)), self.window[3] + 1]
        elapsed = self.clock()
        progress = self.progress(elapsed)
        self.emit(
            StepEvent(
                step=self.step,
                total_steps=self.budget.total_steps,
                epoch=self.epoch,
                part=self.part,
                progress=progress,
                loss=losses[0],
                mask_loss=losses[1],
                depth_loss=losses[2],
                lr=current_lr(self.optimizer),
                images_per_s=self.images / max(time.perf_counter() - self.rate_start, 1e-9),
                elapsed_s=elapsed,
                eta_s=elapsed * (1 - progress) / progress if progress > 0 else None,
                precision=self.dtype,
                bf16_speedup=self.precision.bf16_speedup,
            )
        )
        if self.cfg.sample_every and self.step % self.cfg.sample_every == 0:
            self.emit_samples()
        return progress

    def emit_samples(self) -> None:
        if self.ddp.is_main:
            self.emit(SamplesEvent(step=self.step, samples=sample_predictions(self.model, self.data.preview)))

    def evaluate(self) -> None:
        """Score the test subset; save the weights if best; write metrics.json; emit the event."""
        result = evaluate_run(self.model, self.data, self.cfg, self.ddp)
        n = max(self.window[3], 1)
        # A diverged evaluation (NaN/inf loss) is never "best": its weights must not be saved.
        is_best = math.isfinite(result.loss) and (self.best is None or result.loss < self.best.test_loss)
        event = EvalEvent(
            step=self.step,
            epoch=self.epoch,
            part=self.part,
            progress=self.progress(time.perf_counter() - self.start),
            train_loss=self.window[0] / n,
            train_mask_loss=self.window[1] / n,
            train_depth_loss=self.window[2] / n,
            test_loss=result.loss,
            test_mask_loss=result.mask_loss,
            test_depth_loss=result.depth_loss,
            metrics=result.metrics,
            lr=current_lr(self.optimizer),
            is_best=is_best,
            elapsed_s=time.perf_counter() - self.start,
        )
        self.window = [0.0, 0.0, 0.0, 0]
        self.schedule.on_eval(result.loss)
        self.history.append(dataclasses.asdict(event))
        if is_best:
            self.writer.write_best(self.model)
            self.best = event  # only once its weights are on disk (a failed write keeps the previous best)
        self.writer.write_metrics(
            self.best, self.history, self.data.description, self.dtype, self.precision.as_dict()
        )
        self.emit(event)

    def nan_message(self, loss: float) -> str:
        kept = (
            f"the best weights so far (step {self.best.step}) were kept"
            if self.best is not None
            else "no weights were saved (no evaluation had a finite loss yet)"
        )
        return f"the loss became {loss} at step {self.step + 1}: training stopped and {kept}; lower the learning rate"

    def done(self, reason: str, message: str) -> TrainResult:
        """Emit the DoneEvent (the message says how it ended unless given) and return the result."""
        elapsed, best = time.perf_counter() - self.start, self.best
        if not message:
            message = f"{'stopped' if reason == 'stopped' else 'finished'} after {self.step} steps in {elapsed:.0f} s"
            if best is not None:
                message += f"; best test loss {best.test_loss:.4f} at step {best.step}"
        run_dir = self.writer.run_dir
        self.emit(DoneEvent(str(run_dir), reason, self.step, elapsed, best, message, self.dtype))
        return TrainResult(
            run_dir=run_dir,
            reason=reason,
            steps=self.step,
            elapsed_s=elapsed,
            best_metrics=dict(best.metrics) if best else {},
            best_test_loss=best.test_loss if best else None,
            message=message,
            precision=self.dtype,
        )

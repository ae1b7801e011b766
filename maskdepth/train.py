"""The one training loop. The CLI (tqdm) and the app (gr.Progress, plots) both drive it.

    result = train(TrainConfig(...), on_event=print, stop=threading.Event())

Progress is reported as events (:class:`StepEvent`, :class:`EvalEvent`,
:class:`SamplesEvent`, :class:`DoneEvent`); a caller can stop the run between steps by
setting ``stop``. The best weights (lowest test loss) are written atomically to
``out_dir`` in the ``save_pretrained`` layout, with ``last.pt`` for ``--resume``.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors.torch import save_file
from torch.utils.data import DataLoader, Dataset, Subset

from maskdepth import distributed, fileio
from maskdepth.config import OPTIMIZERS, SCHEDULERS, TrainConfig  # noqa: F401 (also maskdepth.train names)
from maskdepth.data.synthetic import SyntheticScenes
from maskdepth.data.transforms import Augmented, JointAugment, model_input, split_dataset
from maskdepth.errors import CheckpointError, MaskDepthError, TrainingError
from maskdepth.losses import score_batch
from maskdepth.model import WNet

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


# ---- data -----------------------------------------------------------------------------


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
        )
    from maskdepth.data.folder import open_folder_dataset

    return open_folder_dataset(cfg.dataset, size=cfg.size)


def describe_dataset(ds: Dataset) -> str:
    """One line for logs and model cards."""
    describe = getattr(ds, "describe", None)
    return describe() if callable(describe) else f"{type(ds).__name__} with {len(ds)} samples"


def split_parts(subset: Subset, parts: int) -> list[Subset]:
    """Cut a split into ``parts`` contiguous pieces, like the seed's 5 zip sets."""
    idx = list(subset.indices)
    if parts > len(idx):
        raise TrainingError(f"cannot cut {len(idx)} training samples into {parts} parts; use fewer parts")
    bounds = np.linspace(0, len(idx), parts + 1).round().astype(int)
    return [Subset(subset.dataset, idx[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def to_batch(
    batch: dict[str, torch.Tensor], channels_last: bool, device: torch.device | None = None
) -> dict[str, torch.Tensor]:
    if device is not None and device.type != "cpu":  # one GPU per process under torchrun + nccl
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    if channels_last:
        return {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch.items()}
    return batch


# ---- checkpoints ----------------------------------------------------------------------


def save_weights(model: WNet, folder: Path) -> None:
    """Write config.json + model.safetensors (the save_pretrained layout), each atomically."""
    from maskdepth.hub import weights_state

    state = weights_state(model)
    fileio.atomic_write(folder / "model.safetensors", lambda p: save_file(state, str(p)))
    fileio.write_json(folder / "config.json", model.config)


def _discard_if_empty(run_dir: Path, created: bool) -> None:
    """Remove ``run_dir`` if this run created it and nothing was written into it."""
    if created and run_dir.is_dir() and not any(run_dir.iterdir()):
        run_dir.rmdir()


def write_failure(run_dir: Path, err: OSError) -> str:
    """The message for a run folder that cannot be written: names the folder, the cause and the fix.

    Every file is written atomically, so whatever was saved before (the best weights) stays intact.
    """
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free some disk space or choose another folder"
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = "make it writable or choose another folder"
    else:
        fix = "check the disk or choose another folder"
    return f"could not write to {run_dir} ({err.strerror or err}): {fix}; files saved before are intact"


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


# ---- learning-rate schedules ------------------------------------------------------------


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


# ---- the loop ---------------------------------------------------------------------------


def one_thread_batches(loader: DataLoader) -> Iterator[dict[str, torch.Tensor]]:
    """Fetch each batch with one torch thread, then give the model all of them back.

    Generation and augmentation are many tiny tensor ops; fanned out over threads they spend
    more time synchronising than computing (measured in bench/: 843 ms vs 123 ms a batch).
    """
    it, threads = iter(loader), torch.get_num_threads()
    while True:
        torch.set_num_threads(1)
        try:
            batch = next(it, None)
        finally:
            torch.set_num_threads(threads)
        if batch is None:
            return
        yield batch


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


def train(
    cfg: TrainConfig,
    on_event: Callable[[Event], None] | None = None,
    stop: threading.Event | None = None,
) -> TrainResult:
    """Train a W-Net as ``cfg`` says; returns when the budget is spent or ``stop`` is set.

    Under torchrun every process calls this and trains with DistributedDataParallel
    (docs/scaling.md); only rank 0 gets events and writes the run folder.
    """
    ddp = distributed.setup()
    try:
        return _train(cfg, on_event if ddp.is_main else None, stop, ddp)
    finally:
        distributed.cleanup(ddp)


def _train(
    cfg: TrainConfig,
    on_event: Callable[[Event], None] | None,
    stop: threading.Event | None,
    ddp: distributed.Context,
) -> TrainResult:
    emit = on_event or (lambda event: None)
    stop = stop or threading.Event()
    start = time.perf_counter()
    run_dir = Path(cfg.out_dir)

    if cfg.scale_lr and ddp.enabled:
        # Linear scaling rule. The config records the lr actually used (and scale_lr off), so
        # that re-running its train_config.json does not scale twice.
        cfg = dataclasses.replace(cfg, lr=cfg.lr * ddp.world_size, scale_lr=False)

    # 1. Output folder: fail now, not after an hour of training. Only rank 0 writes files.
    created = ddp.is_main and not run_dir.exists()  # removed again if the run cannot start (steps 3-4)
    try:
        if ddp.is_main:
            fileio.check_writable(run_dir)
    except OSError as e:
        raise TrainingError(
            f"cannot write to the output folder {run_dir} ({e.strerror}); choose another"
        ) from e

    # 2. Reproducibility and threads.
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    # 3. Data: seeded split, parts, augmentation, a fixed evaluation subset.
    try:
        dataset = build_dataset(cfg)
        train_split, test_split = split_dataset(dataset, cfg.test_fraction, seed=cfg.seed)
        parts = split_parts(train_split, cfg.parts)
        eval_n = len(test_split) if cfg.eval_samples <= 0 else min(cfg.eval_samples, len(test_split))
        eval_set = Subset(dataset, list(test_split.indices)[:eval_n])
        preview_items = [dataset[i] for i in list(test_split.indices)[:4]]
        preview = {k: torch.stack([it[k] for it in preview_items]) for k in ("bg", "fg_bg", "mask", "depth")}
    except MaskDepthError:
        _discard_if_empty(run_dir, created)  # a run that never started leaves no empty folder behind
        raise

    # 4. Model, optimiser, schedule (possibly resumed).
    resume_state = None
    if cfg.resume:
        try:
            model, resume_state = _load_resume(cfg)
        except MaskDepthError:
            _discard_if_empty(run_dir, created)
            raise
    else:
        model = WNet(in_channels=cfg.in_channels, base_width=cfg.base_width, image_size=cfg.size)
    model.image_size = cfg.size
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model = model.to(ddp.device)
    model.train()
    net = ddp.wrap(model, cfg.sync_bn)  # steps call net (DDP under torchrun); the rest uses model
    optimizer = make_optimizer(cfg, model)
    continue_lr = resume_state is not None and cfg.resume_lr == "continue"
    schedule = Schedule(cfg.scheduler, optimizer, cfg.lr, warmup=not continue_lr)
    if continue_lr:
        optimizer.load_state_dict(resume_state["optimizer"])
        schedule.load_state_dict(resume_state.get("scheduler", {}))
        schedule.peak_lr = float(resume_state.get("lr", cfg.lr))  # OneCycle anneals on from here
    loss_cfg = cfg.loss_config()
    if ddp.is_main:
        try:
            fileio.write_json(run_dir / "train_config.json", cfg.to_dict())
        except OSError as e:
            raise TrainingError(write_failure(run_dir, e)) from e

    # 5. Budget (under torchrun, an epoch is one pass over this process's shard).
    def loader_steps(n: int) -> int:  # batches per epoch: the loader drops a last partial batch
        return n // cfg.batch_size if n > cfg.batch_size else 1

    steps_per_epoch = [loader_steps(math.ceil(len(p) / ddp.world_size)) for p in parts]
    total_steps = None
    if cfg.steps is not None or cfg.epochs is not None:
        candidates = [cfg.steps] if cfg.steps is not None else []
        if cfg.epochs is not None:
            candidates.append(math.ceil(cfg.epochs * sum(steps_per_epoch)))
        total_steps = max(1, min(candidates))
    budget_s = cfg.minutes * 60 if cfg.minutes is not None else None

    def progress_at(step: int, elapsed: float) -> float:
        fractions = []
        if total_steps:
            fractions.append(step / total_steps)
        if budget_s:
            fractions.append(elapsed / budget_s)
        return min(1.0, max(fractions))

    from maskdepth.evaluate import evaluate

    history: list[dict] = []
    best: EvalEvent | None = None
    window = {"loss": 0.0, "mask": 0.0, "depth": 0.0, "n": 0}
    step, epoch, part = 0, 0, 0
    images, rate_start = 0, time.perf_counter()
    reason, message = "budget", ""

    def run_eval() -> EvalEvent:
        nonlocal best
        ddp.broadcast_state(model, buffers_only=True)  # score rank 0's BatchNorm statistics everywhere
        result = evaluate(
            model,
            ddp.shard(eval_set),
            loss_cfg=loss_cfg,
            batch_size=max(cfg.batch_size, 32),
            reduce=ddp.all_reduce_sum if ddp.enabled else None,
        )
        n = max(window["n"], 1)
        # A diverged evaluation (NaN/inf loss) is never "best": its weights must not be saved.
        is_best = math.isfinite(result.loss) and (best is None or result.loss < best.test_loss)
        event = EvalEvent(
            step=step,
            epoch=epoch,
            part=part,
            progress=progress_at(step, time.perf_counter() - start),
            train_loss=window["loss"] / n,
            train_mask_loss=window["mask"] / n,
            train_depth_loss=window["depth"] / n,
            test_loss=result.loss,
            test_mask_loss=result.mask_loss,
            test_depth_loss=result.depth_loss,
            metrics=result.metrics,
            lr=current_lr(optimizer),
            is_best=is_best,
            elapsed_s=time.perf_counter() - start,
        )
        window.update(loss=0.0, mask=0.0, depth=0.0, n=0)
        schedule.on_eval(result.loss)
        history.append(dataclasses.asdict(event))
        if is_best:
            if ddp.is_main:
                save_weights(model, run_dir)
            best = event  # only once its weights are on disk (a failed write keeps the previous best)
        if ddp.is_main:
            fileio.write_json(
                run_dir / "metrics.json",
                {
                    "best": dataclasses.asdict(best) if best else None,
                    "history": history,
                    "dataset": describe_dataset(dataset),
                },
            )
        emit(event)
        return event

    def save_last() -> None:
        if not ddp.is_main:
            return
        fileio.torch_save(
            run_dir / "last.pt",
            {
                "model": {k: v.contiguous() for k, v in model.state_dict().items()},
                "model_config": model.config,
                "optimizer": optimizer.state_dict(),
                "scheduler": schedule.state_dict(),
                "lr": current_lr(optimizer),
                "step": step,
                "epoch": epoch,
                "train_config": json.loads(json.dumps(cfg.to_dict())),
            },
        )

    # 6. Train: parts one after another, epochs within a part, until the budget is spent.
    augment = JointAugment() if cfg.augment else None
    try:
        done = False
        while not done:
            _, elapsed = ddp.agree(False, time.perf_counter() - start)
            target_part = min(int(progress_at(step, elapsed) * cfg.parts), cfg.parts - 1)
            if target_part != part:
                # Next part (seed variant ii): go on from the best weights so far; "restart" resets the lr.
                part = target_part
                if ddp.is_main and (run_dir / "model.safetensors").is_file():
                    from safetensors.torch import load_file

                    model.load_state_dict(load_file(str(run_dir / "model.safetensors")))
                ddp.broadcast_state(model)  # the other ranks may not see rank 0's run folder
                if cfg.resume_lr == "restart":
                    optimizer = make_optimizer(cfg, model)
                    schedule = Schedule(cfg.scheduler, optimizer, cfg.lr)
            data: Dataset = parts[part]
            if augment is not None:
                data = Augmented(data, augment, seed=cfg.seed)
                data.epoch = epoch
            sampler = ddp.sampler(data, seed=cfg.seed, epoch=epoch)  # None: one process sees all
            loader = DataLoader(
                data,
                batch_size=cfg.batch_size,
                shuffle=sampler is None,
                sampler=sampler,
                drop_last=len(sampler if sampler is not None else data) > cfg.batch_size,
                num_workers=cfg.num_workers,
                generator=torch.Generator().manual_seed(cfg.seed + epoch),
            )
            for batch in one_thread_batches(loader) if cfg.num_workers == 0 else loader:
                # Every rank must leave the loop at the same step: agree on stop and on the clock.
                stopping, elapsed = ddp.agree(stop.is_set(), time.perf_counter() - start)
                if stopping:
                    reason, done = "stopped", True
                    break
                batch = to_batch(batch, cfg.channels_last, ddp.device)
                schedule.on_step(progress_at(step, elapsed))
                out = net(model_input(batch["bg"], batch["fg_bg"], model.in_channels))
                losses = score_batch(out, batch, loss_cfg)
                # The effective batch's losses; non-finite when any rank's is, so all stop together.
                seen = ddp.mean(
                    torch.stack([losses.total.detach(), losses.mask.detach(), losses.depth.detach()])
                )
                if not torch.isfinite(seen[0]):
                    reason, done = "nan", True
                    kept = (
                        f"the best weights so far (step {best.step}) were kept"
                        if best is not None
                        else "no weights were saved (no evaluation had a finite loss yet)"
                    )
                    message = (
                        f"the loss became {seen[0].item()} at step {step + 1}: training stopped and {kept}; "
                        "lower the learning rate"
                    )
                    break
                optimizer.zero_grad(set_to_none=True)
                losses.total.backward()
                optimizer.step()
                step += 1
                images += batch["fg_bg"].shape[0] * ddp.world_size
                total_loss, mask_loss, depth_loss = seen.tolist()
                window["loss"] += total_loss
                window["mask"] += mask_loss
                window["depth"] += depth_loss
                window["n"] += 1
                _, elapsed = ddp.agree(False, time.perf_counter() - start)
                progress = progress_at(step, elapsed)
                rate = images / max(time.perf_counter() - rate_start, 1e-9)
                emit(
                    StepEvent(
                        step=step,
                        total_steps=total_steps,
                        epoch=epoch,
                        part=part,
                        progress=progress,
                        loss=total_loss,
                        mask_loss=mask_loss,
                        depth_loss=depth_loss,
                        lr=current_lr(optimizer),
                        images_per_s=rate,
                        elapsed_s=elapsed,
                        eta_s=elapsed * (1 - progress) / progress if progress > 0 else None,
                    )
                )
                if cfg.sample_every and step % cfg.sample_every == 0 and ddp.is_main:
                    emit(SamplesEvent(step=step, samples=_sample_predictions(model, preview)))
                if cfg.eval_every and step % cfg.eval_every == 0:
                    run_eval()
                if progress >= 1.0:
                    done = True
                    break
                if min(int(progress * cfg.parts), cfg.parts - 1) != part:
                    break  # move on to the next part
            else:
                epoch += 1
                schedule.on_epoch_end()
                if not cfg.eval_every:
                    run_eval()
        # 7. Final evaluation (unless one just ran), sample previews and the resume state.
        if reason != "nan" and (not history or history[-1]["step"] != step) and step > 0:
            run_eval()
        if reason != "nan":
            save_last()
            if ddp.is_main:
                emit(SamplesEvent(step=step, samples=_sample_predictions(model, preview)))
    except OSError as e:
        reason, message = "error", write_failure(run_dir, e)
        emit(DoneEvent(str(run_dir), "error", step, time.perf_counter() - start, best, message))
        raise TrainingError(message) from e

    elapsed = time.perf_counter() - start
    if not message:
        message = f"{'stopped' if reason == 'stopped' else 'finished'} after {step} steps in {elapsed:.0f} s"
        if best is not None:
            message += f"; best test loss {best.test_loss:.4f} at step {best.step}"
    emit(DoneEvent(str(run_dir), reason, step, elapsed, best, message))
    return TrainResult(
        run_dir=run_dir,
        reason=reason,
        steps=step,
        elapsed_s=elapsed,
        best_metrics=dict(best.metrics) if best else {},
        best_test_loss=best.test_loss if best else None,
        message=message,
    )

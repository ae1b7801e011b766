"""Data-parallel training across processes, as started by ``torchrun``.

    torchrun --nproc_per_node=2 -m maskdepth train --steps 1000

:func:`setup` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``) and joins the process group: backend ``nccl`` with one
GPU per process where CUDA is present, ``gloo`` on CPUs. With ``WORLD_SIZE`` unset or 1
nothing is initialised and every helper of :class:`Context` is a no-op, so the one
training loop in :mod:`maskdepth.training.loop` runs unchanged in a single process.

What the loop asks of this module, and why:
- :meth:`Context.wrap`: DistributedDataParallel averages gradients across processes;
  ``sync_bn`` makes BatchNorm use the statistics of the whole effective batch.
- :meth:`Context.sampler` / :meth:`Context.shard`: each process trains on its own shard
  of the data and scores its own shard of the test set.
- :meth:`Context.agree` / :meth:`Context.mean`: every process must take the same branch
  (stop, NaN, end of a time budget, next part), or one waits forever in a collective
  the others never enter.
- :meth:`Context.all_reduce_sum`: evaluation sums, so every process gets the numbers a
  single process would get on the whole test set.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import Dataset, DistributedSampler, Subset

from maskdepth.errors import TrainingError

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError as e:
        raise TrainingError(
            f"environment variable {name}={value!r} is not an integer; launch with torchrun"
        ) from e


def world_size() -> int:
    """Processes in this run: the process group's size, else ``WORLD_SIZE`` (1 when unset)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return _env_int("WORLD_SIZE", 1)


def rank() -> int:
    """This process's rank: from the process group, else ``RANK`` (0 when unset)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return _env_int("RANK", 0)


def is_main() -> bool:
    """True on the one process that logs and writes files (rank 0); True without torchrun.

    Usable before :func:`setup` (it reads torchrun's ``RANK``), so a CLI can decide early
    whether to draw a progress bar.
    """
    return rank() == 0


@dataclass(frozen=True)
class Context:
    """Where this process stands in a data-parallel run; the default is a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False  # setup() created the process group, so cleanup() destroys it

    @property
    def enabled(self) -> bool:
        """More than one process: the collectives below are real."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ---- model ------------------------------------------------------------------------

    def wrap(self, model: nn.Module, sync_bn: bool = False) -> nn.Module:
        """The module to call for training steps: ``model`` itself, or DDP around it.

        ``model`` stays the raw network (save it, evaluate it, build the optimiser on it):
        DDP shares its parameters, so its state_dict keys never get a ``module.`` prefix.
        ``sync_bn`` swaps BatchNorm2d for a synchronised version *in place* (same
        parameters, buffers and state_dict keys); call this before building the optimiser.
        """
        if not self.enabled:
            return model
        if sync_bn:
            convert_sync_batchnorm(model, self.device)
        # DDP broadcasts rank 0's parameters and buffers here, so every process starts equal.
        return nn.parallel.DistributedDataParallel(
            model, device_ids=[self.local_rank] if self.device.type == "cuda" else None
        )

    def broadcast_state(self, model: nn.Module, buffers_only: bool = False) -> None:
        """Copy rank 0's parameters (unless ``buffers_only``) and buffers to every process.

        Buffers: without sync-BN each process's BatchNorm running statistics follow its own
        shard; evaluation uses rank 0's so that a sharded evaluation scores one model.
        Parameters: after rank 0 alone read weights from its run folder (next part).
        """
        if not self.enabled:
            return
        tensors: Iterable[Tensor] = model.buffers() if buffers_only else model.state_dict().values()
        with torch.no_grad():
            for t in tensors:
                dist.broadcast(t.data, src=0)

    # ---- data -------------------------------------------------------------------------

    def sampler(self, data: Dataset, seed: int, epoch: int) -> DistributedSampler | None:
        """This process's shard of ``data`` for ``epoch`` (None in a single process).

        Seeded and re-shuffled each epoch; shards have equal length (a few samples are
        repeated when ``len(data)`` is not a multiple of the world size), so every
        process runs the same number of steps.
        """
        if not self.enabled:
            return None
        sampler = DistributedSampler(
            data, num_replicas=self.world_size, rank=self.rank, shuffle=True, seed=seed
        )
        sampler.set_epoch(epoch)
        return sampler

    def shard(self, data: Dataset) -> Dataset:
        """Every world_size-th sample from this rank on, without repeats (for evaluation sums)."""
        if not self.enabled:
            return data
        return Subset(data, range(self.rank, len(data), self.world_size))  # type: ignore[arg-type]

    # ---- agreement --------------------------------------------------------------------

    def all_reduce_sum(self, values: Tensor) -> Tensor:
        """Sum ``values`` over all processes; returns a new tensor on ``values``' device."""
        if not self.enabled:
            return values
        out = values.detach().to(self.device, copy=True)  # nccl reduces GPU tensors only
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out.to(values.device)

    def agree(self, stop: bool, elapsed_s: float) -> tuple[bool, float]:
        """(stop, elapsed) that every process shares: stop if any process stops, the latest clock.

        Time budgets and the schedules that follow them read the clock; each process's
        clock differs a little, and one process leaving the loop a step early would hang
        the others.
        """
        if not self.enabled:
            return stop, elapsed_s
        flags = torch.tensor([float(stop), elapsed_s], dtype=torch.float64, device=self.device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        return bool(flags[0].item() > 0), float(flags[1].item())

    def mean(self, values: Tensor) -> Tensor:
        """Mean of a (detached) tensor over processes; non-finite if any process's is.

        Shards have equal size, so the mean of per-process batch means is the mean over the
        effective batch. NaN and inf survive the sum, which is how every process learns
        that one of them diverged, before any of them enters backward.
        """
        if not self.enabled:
            return values
        return self.all_reduce_sum(values.detach().double()) / self.world_size


def setup() -> Context:
    """Join the process group torchrun describes (or the one the caller already set up).

    Returns the single-process :class:`Context` when ``WORLD_SIZE`` is unset or 1.

    Raises:
        TrainingError: ``WORLD_SIZE`` > 1 but torchrun's rendezvous variables are missing.
    """
    if dist.is_available() and dist.is_initialized():
        # The caller initialised the group (e.g. its own launcher); join, but leave it open.
        backend = dist.get_backend()
        local = _env_int("LOCAL_RANK", 0)
        device = torch.device("cuda", local) if backend == "nccl" else torch.device("cpu")
        return Context(dist.get_rank(), dist.get_world_size(), local, device, owns_group=False)
    size = _env_int("WORLD_SIZE", 1)
    if size <= 1:
        return Context()
    missing = [name for name in TORCHRUN_VARS if not os.environ.get(name)]
    if missing:
        raise TrainingError(
            f"WORLD_SIZE={size} but {', '.join(missing)} not set: launch with "
            "`torchrun --nproc_per_node=N -m maskdepth train ...` (see docs/scaling.md)"
        )
    if not dist.is_available():
        raise TrainingError("this torch build has no torch.distributed; train in one process (no torchrun)")
    global_rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if torch.cuda.is_available() and dist.is_nccl_available():
        backend, device = "nccl", torch.device("cuda", local)
        torch.cuda.set_device(device)  # one GPU per process, chosen by its rank on the node
    else:
        backend, device = "gloo", torch.device("cpu")
    dist.init_process_group(backend, rank=global_rank, world_size=size)  # env:// rendezvous
    return Context(global_rank, size, local, device, owns_group=True)


def cleanup(ctx: Context) -> None:
    """Leave the process group if :func:`setup` created it."""
    if ctx.owns_group and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# ---- synchronised BatchNorm -----------------------------------------------------------


class _AllReduceSum(torch.autograd.Function):
    """Differentiable all-reduce: y = sum over processes of x, on every process.

    Every process's loss depends on every process's x through y, so the gradient of the
    total loss with respect to the local x is the sum over processes of dL_p/dy: the
    backward is an all-reduce of the incoming gradients.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        out = x.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        out = grad.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out


class SyncBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the batches of all processes, on any device.

    ``torch.nn.SyncBatchNorm`` runs on GPUs only (its kernels do not exist for the CPU),
    so CPU runs use this one: per-channel sums of x and x^2 (float64, against
    cancellation) and the element count go through one differentiable all-reduce, whose
    backward all-reduces the gradients, so every process gets the gradient of the loss
    over the whole effective batch. Eval mode, or a single process, is plain BatchNorm2d.
    Same parameters, buffers and state_dict keys as BatchNorm2d.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not (
            self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        ):
            return super().forward(x)
        self._check_input_dim(x)
        # x (B, C, H, W) -> per-channel [sum x, sum x^2] and the count, summed over processes.
        x64 = x.double()
        count = torch.tensor([x.numel() / x.shape[1]], dtype=torch.float64, device=x.device)
        local = torch.cat([x64.sum(dim=(0, 2, 3)), (x64 * x64).sum(dim=(0, 2, 3)), count])
        total = _AllReduceSum.apply(local)
        c = x.shape[1]
        n = total[-1]
        mean = total[:c] / n
        var = (total[c : 2 * c] / n - mean * mean).clamp_min(0)  # biased, as BatchNorm normalises

        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            self.num_batches_tracked.add_(1)  # type: ignore[union-attr]
            momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            with torch.no_grad():
                unbiased = var * n / (n - 1).clamp_min(1)  # running_var is unbiased, as in BatchNorm
                self.running_mean.mul_(1 - momentum).add_(mean.to(self.running_mean.dtype), alpha=momentum)
                self.running_var.mul_(1 - momentum).add_(unbiased.to(self.running_var.dtype), alpha=momentum)

        shape = (1, c, 1, 1)
        y = (x64 - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        y = y.to(x.dtype)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Replace every BatchNorm2d in ``model`` (in place) by a synchronised one.

    GPUs get ``torch.nn.SyncBatchNorm`` (fused kernels); CPUs :class:`SyncBatchNorm2d`.
    Parameters are the same objects, so an optimiser built before still applies.
    """
    if device.type != "cpu":
        converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if converted is not model:
            raise TrainingError("sync_bn cannot convert a model that is itself a BatchNorm layer")
        return model
    for name, child in list(model.named_children()):
        if type(child) is nn.BatchNorm2d:
            sync = SyncBatchNorm2d(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            ).to(device)
            # Keep the very same Parameter objects and buffers (state_dict unchanged).
            sync.weight, sync.bias = child.weight, child.bias
            sync.running_mean, sync.running_var = child.running_mean, child.running_var
            sync.num_batches_tracked = child.num_batches_tracked
            sync.train(child.training)
            setattr(model, name, sync)
        else:
            convert_sync_batchnorm(child, device)
    return model


__all__ = [
    "Context",
    "SyncBatchNorm2d",
    "cleanup",
    "convert_sync_batchnorm",
    "is_main",
    "rank",
    "setup",
    "world_size",
]

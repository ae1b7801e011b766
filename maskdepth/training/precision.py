"""Which precision the training forward runs in: bfloat16 where it measures faster.

``TrainConfig.precision`` is ``"bf16"``, ``"fp32"`` or ``"auto"``. On a CPU, auto is decided by
measurement, not by CPU flags (a CPU with AVX512-BF16 can still train the W-Net slower in bf16): :func:`measure_bf16_speedup` times a few interleaved fp32 and bf16 training steps of
the model at hand, at the run's batch and size (a second or two), and bf16 is chosen only if it
is more than :data:`BF16_MARGIN` faster. The measured ratio is cached per machine (CPU model),
torch version, torch threads and model width in ``precision.json`` under :func:`cache_dir`, so
later runs skip the probe. On CUDA, auto keeps the device rule (bf16 where the GPU runs it
natively: there it is reliably faster, and a probe would need the GPU warmed up to be fair).

Only the forward of a training step runs under :func:`torch.autocast`; parameters, optimiser
state, losses, evaluation and saved weights stay float32.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

BF16_MARGIN = 1.05  # auto picks bf16 only if its step is > 5% faster: a margin for the probe's noise
PROBE_SECONDS = 1.5  # timed rounds stop after this (at least MIN_ROUNDS rounds of one step each)
MIN_ROUNDS, MAX_ROUNDS = 2, 12
CACHE_FILE = "precision.json"


def native_bf16(device: torch.device) -> bool:
    """Whether a CUDA ``device`` runs bfloat16 natively (auto's rule there; CPUs are measured instead)."""
    return (
        device.type == "cuda"
        and torch.cuda.is_available()
        and torch.cuda.is_bf16_supported(including_emulation=False)
    )


@dataclass(frozen=True)
class Choice:
    """The training forward's precision and how it was decided."""

    dtype: str  # "bf16" or "fp32"
    how: str  # "forced" (--precision), "measured" (probe ran now), "cached" (probe result reused), "device"
    bf16_speedup: float | None = None  # fp32 step time / bf16 step time: > 1 means bf16 is faster

    def as_dict(self) -> dict:
        return {"dtype": self.dtype, "how": self.how, "bf16_speedup": self.bf16_speedup}


def label(dtype: str, bf16_speedup: float | None) -> str:
    """For progress lines: ``"fp32 (bf16 0.84x)"``, ``"bf16 (1.31x fp32)"``, or just the dtype."""
    if bf16_speedup is None:
        return dtype
    return f"bf16 ({bf16_speedup:.2f}x fp32)" if dtype == "bf16" else f"fp32 (bf16 {bf16_speedup:.2f}x)"


def cpu_name() -> str:
    """The CPU's model string (``/proc/cpuinfo``'s model name, else what ``platform`` says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cache_dir() -> Path:
    """Where per-machine measurements live: $MASKDEPTH_CACHE_DIR, else $XDG_CACHE_HOME/maskdepth,
    else ~/.cache/maskdepth."""
    if os.environ.get("MASKDEPTH_CACHE_DIR"):
        return Path(os.environ["MASKDEPTH_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "maskdepth"


def cache_key(base_width: int) -> str:
    """What a measured ratio holds for: this CPU, torch version, torch threads and model width."""
    return (
        f"{cpu_name()} | torch {torch.__version__} | {torch.get_num_threads()} threads | width {base_width}"
    )


def _read_cache() -> dict:
    try:
        data = json.loads((cache_dir() / CACHE_FILE).read_text())
    except (OSError, ValueError):  # none yet, or unreadable: measure again
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(key: str, entry: dict) -> None:
    from maskdepth import fileio

    data = _read_cache()
    data[key] = entry
    try:
        fileio.write_json(cache_dir() / CACHE_FILE, data)
    except OSError:  # a read-only home: the choice stands, the next run measures again
        pass


def measure_bf16_speedup(
    model: torch.nn.Module,
    batch_size: int,
    size: int,
    *,
    channels_last: bool = True,
    seconds: float = PROBE_SECONDS,
    timer: Callable[[], float] = time.perf_counter,
) -> float:
    """fp32 step time / bf16 step time of ``model``'s training step on the CPU, interleaved.

    A copy of the model runs forward (under autocast for bf16) and backward on a seeded random
    (batch_size, in_channels, size, size) batch; ``model``, its gradients and torch's global
    random state are left as they were. One untimed warm-up step per dtype, then rounds of one
    step each, alternating which goes first, until ``seconds`` have passed. The ratio is of the
    fastest step of each: on shared cores the slow ones measure the neighbours, not the dtype.
    """
    net = copy.deepcopy(model).train()
    x = torch.rand(batch_size, net.in_channels, size, size, generator=torch.Generator().manual_seed(0))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    device = torch.device("cpu")

    def step(dtype: str) -> float:
        t0 = timer()
        with autocast(dtype, device):
            out = net(x)
        sum(t.float().mean() for t in out).backward()
        net.zero_grad(set_to_none=True)
        return timer() - t0

    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    with torch.random.fork_rng(devices=[]):
        step("fp32"), step("bf16")  # warm-up: oneDNN builds its kernels on first use
        start = timer()
        for r in range(MAX_ROUNDS):
            for dtype in ("fp32", "bf16") if r % 2 == 0 else ("bf16", "fp32"):
                times[dtype].append(step(dtype))
            if r + 1 >= MIN_ROUNDS and timer() - start >= seconds:
                break
    return min(times["fp32"]) / max(min(times["bf16"]), 1e-12)


def choose(
    choice: str,
    model: torch.nn.Module,
    device: torch.device,
    *,
    batch_size: int,
    size: int,
    channels_last: bool = True,
    agree: Callable[[float], float] | None = None,
) -> Choice:
    """What a ``TrainConfig.precision`` of ``choice`` means for ``model`` on ``device``.

    Forced values are taken as given (no probe). Auto on a CPU reuses a cached ratio for this
    machine, torch and width, or measures it (:func:`measure_bf16_speedup`) and caches it; bf16
    if it is more than ``BF16_MARGIN`` faster. ``agree`` (under torchrun: the mean over
    processes) makes every process decide on the same ratio.
    """
    if choice != "auto":
        return Choice(choice, "forced")
    if device.type != "cpu":
        return Choice("bf16" if native_bf16(device) else "fp32", "device")
    key = cache_key(model.base_width)
    entry = _read_cache().get(key)
    if isinstance(entry, dict) and isinstance(entry.get("bf16_speedup"), int | float):
        speedup, how = float(entry["bf16_speedup"]), "cached"
    else:
        speedup, how = measure_bf16_speedup(model, batch_size, size, channels_last=channels_last), "measured"
        _write_cache(
            key, {"bf16_speedup": speedup, "batch_size": batch_size, "size": size, "at": time.time()}
        )
    if agree is not None:
        speedup = agree(speedup)
    return Choice("bf16" if speedup > BF16_MARGIN else "fp32", how, speedup)


def autocast(dtype: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context for a training forward in ``dtype`` ("bf16" or "fp32") on ``device``."""
    if dtype == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()

"""Which precision the training forward runs in: bfloat16 where the device has it natively.

``TrainConfig.precision`` is ``"auto"`` (bf16 on CUDA GPUs that support it and on CPUs with
AVX512-BF16 or AMX, fp32 elsewhere), ``"bf16"`` or ``"fp32"``. Only the forward of a training step
runs under :func:`torch.autocast`; parameters, optimiser state, losses, evaluation and saved
weights stay float32.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

_CPU_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}  # x86 flags in /proc/cpuinfo


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True on CPUs with bfloat16 arithmetic in hardware (AVX512-BF16, AMX; Arm's BF16 extension)."""
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(torch.cpu, name, None)
        try:
            if check is not None and check():
                return True
        except RuntimeError:
            pass
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 / Arm
            flags = set(value.split())
            return bool(flags & _CPU_BF16_FLAGS) or "bf16" in flags
    return False


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 natively (so autocast to it speeds training up)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return cpu_has_native_bf16()
    return False


def resolve(choice: str, device: torch.device) -> str:
    """``"bf16"`` or ``"fp32"``: what a ``TrainConfig.precision`` of ``choice`` means on ``device``."""
    if choice == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return choice


def autocast(dtype: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context for a training forward in ``dtype`` ("bf16" or "fp32") on ``device``."""
    if dtype == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()

"""Small shared pieces of the benchmark: statistics, rows, recipes, machine facts.

Machines are noisy (and this one may be shared), so every number is a distribution:
:class:`Stats` keeps the median, min, max and count, and every comparison is a ratio
of windows measured in the same round.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# The seed's dataset size: 100 backgrounds x 100 foregrounds x 20 positions x 2 flips.
SEED_DATA = {"backgrounds": 100, "foregrounds": 100, "positions": 20}
# The benchmarks' training data: the room scenes, one image + its paste (the generator's defaults
# and the first shipped recipe), so their numbers stay comparable with the earlier rounds.
ROOM_SCENES = {"scene_families": "rooms", "two_shot": False}


@dataclass
class Stats:
    """Median / min / max of repeated measurements."""

    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Stats:
        vals = [float(v) for v in values]
        if not vals:
            raise ValueError("no measurements")
        return cls(statistics.median(vals), min(vals), max(vals), len(vals))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class Row:
    """One line of the results table.

    ``value`` is the headline number (a median when ``lo``/``hi`` are set), ``verdict``
    is "PASS" / "MISS" / "" (no target) / "n/a".
    """

    section: str
    metric: str
    value: float | None
    unit: str = ""
    lo: float | None = None
    hi: float | None = None
    n: int | None = None
    target: str = ""
    verdict: str = ""
    note: str = ""

    @classmethod
    def from_stats(cls, section: str, metric: str, stats: Stats, unit: str = "", **kw: Any) -> Row:
        return cls(section, metric, stats.median, unit, stats.min, stats.max, stats.n, **kw)

    @classmethod
    def at_most(cls, section: str, metric: str, stats: Stats, unit: str, limit: float, **kw: Any) -> Row:
        """``stats`` with the target "median <= ``limit`` ``unit``" and its verdict."""
        target, ok = f"<= {_amount(limit, unit)}", stats.median <= limit
        return cls.from_stats(section, metric, stats, unit, target=target, verdict=verdict(ok), **kw)

    @classmethod
    def at_least(cls, section: str, metric: str, stats: Stats, unit: str, limit: float, **kw: Any) -> Row:
        """``stats`` with the target "median >= ``limit`` ``unit``" and its verdict."""
        target, ok = f">= {_amount(limit, unit)}", stats.median >= limit
        return cls.from_stats(section, metric, stats, unit, target=target, verdict=verdict(ok), **kw)


def _amount(value: float, unit: str) -> str:
    """``value`` with its unit as the targets show it: ``2x``, ``1.5x``, ``100 ms``."""
    return f"{value:g}x" if unit == "x" else f"{value:g} {unit}"


@dataclass
class SectionResult:
    """What a benchmark section measured (``raw``, JSON-able) and how it is shown.

    ``rows`` go into the main table; ``tables`` are extra small tables, each
    ``{"title": str, "headers": [str], "rows": [[str]]}``.
    """

    rows: list[Row] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)


def verdict(ok: bool | None) -> str:
    """PASS / MISS, or n/a when the target could not be checked."""
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def vm_hwm_mb() -> float | None:
    """Peak resident set size of this process in MiB (``VmHWM``), None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_facts() -> dict[str, Any]:
    """CPU, cores, memory, load, torch build and threads, date: printed with every result."""
    import torch

    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    flags: list[str] = []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                flags = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in have]
                break
    except OSError:
        pass
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cpu_flags": flags,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "mem_gb": mem_gb,
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "platform": platform.platform(),
    }


def shipped_config(out_dir: str | Path, **overrides: Any) -> Any:
    """The first shipped training recipe on the seed-sized room scenes (ROOM_SCENES).

    AdamW lr 2e-3 with one-cycle, mask bce+dice, depth bce, batch 32, channels_last,
    joint augmentation, 64x64.
    """
    from maskdepth.training.loop import TrainConfig

    data = {"dataset": "synthetic", **SEED_DATA, **ROOM_SCENES, "depth_loss": "bce"}
    return TrainConfig(**{**data, "out_dir": str(out_dir), **overrides})


def seed_config(out_dir: str | Path, **overrides: Any) -> Any:
    """The seed's recipe through the same loop: Adam lr 0.01 (no weight decay, torch's default,
    as the seed), ReduceLROnPlateau, batch 128, BCE + BCE, no channels_last, no augmentation."""
    seed_recipe = dict(
        mask_loss="bce",
        depth_loss="bce",
        optimizer="adam",
        lr=0.01,
        weight_decay=0.0,
        scheduler="plateau",
        batch_size=128,
        channels_last=False,
        augment=False,
    )
    return shipped_config(out_dir, **{**seed_recipe, **overrides})

"""Data pipeline: samples/s of the synthetic generator (with the training augmentation) and of
the seed-layout folder dataset (224x224 JPEGs read at 64x64), with 0 and 1 DataLoader workers.

Each configuration keeps one endless iterator (workers persist), and the configurations
take turns in windows, round after round.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from bench.common import SEED_DATA, Row, SectionResult, Stats
from maskdepth.data.folder import SeedLayoutDataset
from maskdepth.data.synthetic import SyntheticScenes
from maskdepth.data.transforms import Augmented, JointAugment

PREFETCH_FACTOR = 2  # DataLoader's default batches in flight per worker


def synthetic_augmented(*, size: int = 64, prefill: bool = True) -> Augmented:
    """The training data as the shipped loop sees it: seed-sized synthetic scenes + JointAugment.

    ``prefill`` renders every background once first, so timings are the steady state of a
    long run (the generator caches rendered rooms; a cold cache costs one render per room).
    """
    scenes = SyntheticScenes(**SEED_DATA, size=size, seed=0)
    if prefill:
        for b in range(scenes.backgrounds):
            scenes._background(b)  # warms the generator's own cache
    return Augmented(scenes, JointAugment(), seed=0)


def _forever(dataset: Dataset, batch_size: int, workers: int) -> Iterator[dict[str, torch.Tensor]]:
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        prefetch_factor=PREFETCH_FACTOR if workers > 0 else None,
        generator=torch.Generator().manual_seed(0),
    )
    while True:
        yield from loader


def run_data(
    export_dir: Path, *, window_s: float, rounds: int, batch_size: int = 32, workers: tuple[int, ...] = (0, 1)
) -> SectionResult:
    """Section 2: samples/s per (dataset, workers), median over windows."""
    res = SectionResult()
    t0 = time.perf_counter()
    cold = SyntheticScenes(**SEED_DATA, size=64, seed=0)
    cold[0]  # first call also builds the texture pool
    first_s = time.perf_counter() - t0
    renders = []
    for b in range(1, 6):
        t = time.perf_counter()
        cold._background(b)  # a cache miss: the cost of rendering one room
        renders.append(time.perf_counter() - t)
    res.raw["first_sample_s"] = first_s
    res.raw["background_render_s"] = renders

    datasets = {
        "synthetic + augment": synthetic_augmented(prefill=True),
        "folder (seed layout JPEG 224->64)": SeedLayoutDataset(export_dir, size=64),
    }
    # (dataset, workers, one torch thread while fetching): the last is a candidate fix for
    # workers=0, where tiny augmentation ops otherwise fan out over torch's whole thread pool.
    configs = [(name, 0, False) for name in datasets] + [(name, 0, True) for name in datasets]
    configs += [(name, w, False) for name in datasets for w in workers if w > 0]
    iters = {c: _forever(datasets[c[0]], batch_size, c[1]) for c in configs}
    for it in iters.values():
        next(it)  # start workers, first batch
    rates: dict[tuple[str, int, bool], list[float]] = {c: [] for c in configs}
    threads = torch.get_num_threads()
    for r in range(rounds):
        for c in configs if r % 2 == 0 else configs[::-1]:
            name, w, one_thread = c
            # Workers prefetch while other configurations are timed: take what they buffered untimed.
            for _ in range(w * PREFETCH_FACTOR):
                next(iters[c])
            n, t = 0, time.perf_counter()
            while True:
                if one_thread:
                    torch.set_num_threads(1)
                try:
                    n += int(next(iters[c])["fg_bg"].shape[0])
                finally:
                    torch.set_num_threads(threads)
                elapsed = time.perf_counter() - t
                if elapsed >= window_s:
                    break
            rates[c].append(n / elapsed)
    for it in iters.values():
        it.close()  # shuts the persistent workers down

    sec = "2 data"
    for (name, w, one_thread), vals in rates.items():
        st = Stats.of(vals)
        how = f"workers={w}" + (", 1 torch thread while fetching" if one_thread else "")
        res.rows.append(
            Row.from_stats(
                sec,
                f"{name}, {how}",
                st,
                "samples/s",
                note=f"{1e3 * batch_size / st.median:.0f} ms per batch of {batch_size}",
            )
        )
    res.rows.append(
        Row.from_stats(sec, "background render (cache miss, 64x64)", Stats.of(x * 1e3 for x in renders), "ms")
    )
    res.raw.update(
        {
            "batch_size": batch_size,
            "window_s": window_s,
            "rounds": rounds,
            "samples_per_s": {f"{name}|workers={w}|one_thread={o}": v for (name, w, o), v in rates.items()},
            "folder_samples": len(datasets["folder (seed layout JPEG 224->64)"]),
        }
    )
    return res


def data_wait_row(data: SectionResult, training: SectionResult) -> Row | None:
    """Does the shipped loop wait on data? Data time per batch (workers=0, serial) vs step time."""
    rates = data.raw.get("samples_per_s", {})
    syn = rates.get("synthetic + augment|workers=0|one_thread=False")
    shipped = training.raw.get("summary", {}).get("shipped")
    if not syn or not shipped:
        return None
    batch = training.raw["shipped"]["batch"]
    data_ms = 1e3 * batch / Stats.of(syn).median
    step_ms = 1e3 * batch / shipped["median"]
    share = data_ms / step_ms
    return Row(
        "2 data",
        "shipped loop: data time / step time (workers=0)",
        100 * share,
        "%",
        note=f"workers=0 fetches serially: the loop waits {data_ms:.0f} ms per {step_ms:.0f} ms step on data"
        + (" (worth fixing)" if share > 0.05 else " (minor)"),
    )

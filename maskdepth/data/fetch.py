"""Fetch DataLoader batches on a thread of their own that runs torch ops on one core.

Generation and augmentation are many tiny tensor ops; fanned out over threads they spend more
time synchronising than computing (measured in bench/: 843 ms vs 123 ms a batch). The training
loop used to call ``torch.set_num_threads(1)`` around each fetch, but that count is process-wide:
any other thread (a prediction in the app) that started torch work meanwhile was held to one core
for good. Here the limit is per thread: OpenMP keeps its thread count per calling thread, so a
fetch thread sets its own to 1 through the OpenMP runtime torch loaded and nobody else is touched.
Where that runtime cannot be reached (a build without OpenMP), batches are fetched as they come.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

_OPENMP_NAMES = ("libgomp", "libiomp", "libomp", "vcomp")


@functools.cache
def _omp_set_num_threads():
    """``omp_set_num_threads`` of the OpenMP runtime torch uses, or None."""
    lib = Path(torch.__file__).parent / "lib"
    files = sorted(lib.iterdir()) if lib.is_dir() else []
    libraries = [str(p) for p in files if p.name.lower().startswith(_OPENMP_NAMES)]
    for name in [*libraries, None]:  # None: the symbols already loaded into the process
        try:
            return ctypes.CDLL(name).omp_set_num_threads
        except (OSError, AttributeError):
            continue
    return None


def limit_this_thread() -> bool:
    """Make torch ops started from the calling thread use one core; True if that worked."""
    set_threads = _omp_set_num_threads()
    if set_threads is None:
        return False
    torch.get_num_threads()  # torch's per-thread set-up first, or its first op would undo ours
    set_threads(1)
    return torch.get_num_threads() == 1


def one_thread_batches(loader: Iterable) -> Iterator:
    """The loader's batches, each fetched on a helper thread limited to one core."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="maskdepth-batches")
    try:
        if not pool.submit(limit_this_thread).result():
            yield from loader
            return
        it = pool.submit(iter, loader).result()
        while (batch := pool.submit(next, it, None).result()) is not None:
            yield batch
    finally:
        pool.shutdown(wait=False, cancel_futures=True)

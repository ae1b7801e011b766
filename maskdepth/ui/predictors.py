"""Loaded models, kept warm: a small LRU of Predictors on the app's device, and the GPU decorator.

On a ZeroGPU Space (``SPACES_ZERO_GPU`` set) :func:`gpu` is ``spaces.GPU``: the handler runs in a
worker that holds a GPU for at most the given duration. Anywhere else ``spaces.GPU`` returns the
handler unchanged (and without the ``spaces`` package, so does :func:`gpu`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import torch

try:
    import spaces  # Hugging Face Spaces' helpers; only ZeroGPU Spaces need them
except ImportError:
    spaces = None

PREDICTOR_CACHE_SIZE = 4  # W-Nets are ~35 MB each in float32; a few stay warm
PREDICT_CONCURRENCY = 2  # two predictions at a time (CPU-bound; more would only thrash)

F = TypeVar("F", bound=Callable[..., Any])


def default_device() -> str:
    """``cuda`` when torch sees a GPU (on ZeroGPU, ``spaces`` makes it visible at start-up), else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def gpu(duration: int | timedelta | Callable[..., int | timedelta]) -> Callable[[F], F]:
    """Decorate a handler with ``spaces.GPU(duration=duration)`` (a no-op off ZeroGPU or without ``spaces``).

    ``duration`` is the most seconds the GPU is held; a callable gets the handler's arguments and
    returns it (for batches: seconds per image x the number of images).
    """
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


class PredictorCache:
    """A small LRU of loaded Predictors keyed by source (and the weights' mtime, so retrained runs reload).

    Every Predictor runs on ``device`` (default: :func:`default_device`).
    """

    def __init__(self, size: int, device: str | None = None):
        self.size = size
        self.device = device or default_device()
        self._items: OrderedDict[tuple[str, float], Any] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(source: str) -> tuple[str, float]:
        weights = Path(source) / "model.safetensors"
        return source, weights.stat().st_mtime if weights.is_file() else 0.0

    def get(self, source: str, token: str | bool | None = None) -> Any:
        """The Predictor for ``source`` (loaded on first use); ``token`` is only used to download."""
        from maskdepth.predict.predictor import Predictor

        key = self._key(source)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        # Load outside the lock: a slow Hub download must not block predictions on cached models.
        kwargs = {"token": token} if token is not None else {}
        predictor = Predictor.from_source(source, device=self.device, **kwargs)
        with self._lock:
            for old in [k for k in self._items if k[0] == source]:
                del self._items[old]  # an older version of the same run
            self._items[key] = predictor
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return predictor

    def __contains__(self, source: str) -> bool:
        return self._key(source) in self._items

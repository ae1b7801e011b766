"""Multi-scale training: every batch at its own random shape (scale and aspect ratio).

The Predictor runs a photo at its own aspect ratio with a long side of 128 to 512 pixels
(maskdepth.predict.predictor.RESOLUTIONS); a model that only ever saw 64x64 squares meets other
scales and shapes there for the first time. With ``TrainConfig.min_size`` set, each training
batch is rendered by the generator at a shape drawn from :func:`batch_shapes`: both sides
multiples of 32 (the W-Net pools five times) between ``min_size`` and ``size``, aspect ratio
at most 2:1 either way. The scene is rendered at that shape (the camera's field of view
is along the width, as for every render), never resized from another render, so depth and apparent size
stay consistent (a zoom would make everything look nearer; see JointAugment.crop_prob).

    shapes = batch_shapes(64, 160)              # [(64, 64), (64, 96), (64, 128), (96, 64), ...]
    data = AtShapes(part, shapes)               # a Subset of SyntheticScenes, indexed (i, (h, w))
    batches = ShapeBatches(RandomSampler(data), 32, drop_last=True, shapes=shapes, seed=0)
    DataLoader(data, batch_sampler=batches)     # each batch one shape, chosen deterministically

Evaluation stays at ``size`` x ``size`` so numbers compare across runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from torch.utils.data import Dataset, Sampler, Subset

from maskdepth.data.geometry import SUPERSAMPLE
from maskdepth.errors import TrainingError

MULTIPLE = 32  # the W-Net's five poolings
MAX_ASPECT = 2.0
# Memory for cached background renders over all shapes together; each shape keeps the same
# number of renders (cache_renders). 3 GiB holds 273 per shape for the 9 shapes of 96-160 px, so
# a 100-scene mix (100 scenes plus their classic rooms: 200 renders) always hits the cache once
# warm; a miss costs ~45-55 ms a sample against ~10 ms for a hit (BENCHMARKS.md, "Training").
CACHE_BYTES = 3 * 1024**3


def background_bytes(shape: tuple[int, int]) -> int:
    """Memory of one cached render: supersampled rgb, z and floor plus the output-size rgb (float32)."""
    h, w = shape
    return (SUPERSAMPLE**2 * (3 * 4 + 4 + 1) + 3 * 4) * h * w


def batch_shapes(min_size: int, max_size: int, max_aspect: float = MAX_ASPECT) -> list[tuple[int, int]]:
    """Every (h, w) with both sides multiples of 32 in [min_size, max_size] and aspect <= max_aspect."""
    low = -(-max(min_size, MULTIPLE) // MULTIPLE) * MULTIPLE
    sides = range(low, max_size + 1, MULTIPLE)
    shapes = [(h, w) for h in sides for w in sides if max(h, w) / min(h, w) <= max_aspect]
    if not shapes:
        raise TrainingError(
            f"no training shape between {min_size} and {max_size} pixels: sides are multiples of "
            f"{MULTIPLE}; make the range include one (e.g. --min-size {low} --size {max(low, max_size)})"
        )
    return shapes


def cache_renders(shapes: Sequence[tuple[int, int]], budget: int = CACHE_BYTES) -> int:
    """How many background renders each of ``shapes`` may cache so that all fit in ``budget`` bytes."""
    return max(4, budget // max(1, sum(background_bytes(s) for s in shapes)))


class AtShapes(Dataset):
    """A Subset of a shape-aware dataset (one with ``at_shape``), indexed by ``(position, (h, w))``.

    ``shapes``: the shapes the batches will ask for, which share :data:`CACHE_BYTES` of cached renders.
    """

    def __init__(self, subset: Subset, shapes: Sequence[tuple[int, int]]):
        base = subset.dataset  # TrainConfig allows min_size with the synthetic generator only
        self.base, self.indices = base, list(subset.indices)
        self.cache_size = cache_renders(shapes)
        self._views: dict[tuple[int, int], Dataset] = {}

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: tuple[int, tuple[int, int]]):
        position, shape = key
        view = self._views.get(shape)
        if view is None:
            view = self._views[shape] = self.base.at_shape(shape, cache_size=self.cache_size)
        return view[self.indices[position]]


class ShapeBatches(Sampler):
    """Batches of ``(position, shape)`` in ``order``'s order; one shape per batch, drawn by ``seed``."""

    def __init__(
        self,
        order: Iterable[int],
        batch_size: int,
        drop_last: bool,
        shapes: list[tuple[int, int]],
        seed: int,
    ):
        self.order, self.batch_size, self.drop_last = order, batch_size, drop_last
        self.shapes, self.seed = shapes, seed

    def __len__(self) -> int:
        n = len(self.order)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[list[tuple[int, tuple[int, int]]]]:
        rng = np.random.default_rng([self.seed, 11])
        batch: list[int] = []
        for position in self.order:
            batch.append(int(position))
            if len(batch) == self.batch_size:
                yield self._shaped(batch, rng)
                batch = []
        if batch and not self.drop_last:
            yield self._shaped(batch, rng)

    def _shaped(self, batch: list[int], rng: np.random.Generator) -> list[tuple[int, tuple[int, int]]]:
        shape = self.shapes[int(rng.integers(len(self.shapes)))]
        return [(i, shape) for i in batch]

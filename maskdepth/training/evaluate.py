"""Evaluate a model on a dataset: losses (via :func:`maskdepth.model.losses.score_batch`, the
same function training uses) and per-image metrics (via :class:`MetricAccumulator`).

Used by the training loop after each epoch and by the CLI ``evaluate`` command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from maskdepth.errors import DatasetError, InputError
from maskdepth.model.losses import LossConfig, score_batch
from maskdepth.model.metrics import MetricAccumulator

REQUIRED_KEYS = ("bg", "fg_bg", "mask", "depth")

ProgressFn = Callable[[int, "int | None"], None]
InputFn = Callable[[Mapping[str, Tensor]], Tensor]


@dataclass
class EvalResult:
    """Outcome of :func:`evaluate`.

    ``metrics`` are per-image means keyed as :data:`maskdepth.model.metrics.METRIC_NAMES`;
    the losses are means over images (each batch's loss weighted by its size).
    """

    metrics: dict[str, float] = field(default_factory=dict)
    loss: float = float("nan")
    mask_loss: float = float("nan")
    depth_loss: float = float("nan")
    n_images: int = 0


def _as_loader(data: object, batch_size: int) -> DataLoader:
    """A DataLoader is used as given; anything else is treated as a dataset and batched in order."""
    if isinstance(data, DataLoader):
        return data
    # shuffle=False: evaluation must see the same images in the same order every time.
    return DataLoader(data, batch_size=batch_size, shuffle=False)  # type: ignore[arg-type]


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _default_input_fn(model: nn.Module) -> InputFn:
    """Build model inputs with the project's one normaliser, ``model_input``."""
    # Imported here, not at module level: maskdepth.data pulls in the dataset code, which
    # evaluate() callers with their own input_fn do not need.
    from maskdepth.data.transforms import model_input

    in_channels = getattr(model, "in_channels", None)
    if in_channels is None:
        raise TypeError(
            f"{type(model).__name__} has no `in_channels` attribute; pass input_fn= to build its input"
        )

    def build(batch: Mapping[str, Tensor]) -> Tensor:
        return model_input(batch["bg"], batch["fg_bg"], in_channels)

    return build


def _check_batch(batch: object) -> None:
    """Raise DatasetError unless ``batch`` is a dict with every key evaluation needs."""
    if not isinstance(batch, Mapping):
        raise DatasetError(
            f"evaluation samples must be dicts with keys {list(REQUIRED_KEYS)}, "
            f"got batches of type {type(batch).__name__}"
        )
    missing = [key for key in REQUIRED_KEYS if key not in batch]
    if missing:
        raise DatasetError(
            f"evaluation samples lack {missing} (have {sorted(batch)}); each sample needs {list(REQUIRED_KEYS)}"
        )


def evaluate(
    model: nn.Module,
    dataset_or_loader: Iterable,
    *,
    loss_cfg: LossConfig | None = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    max_batches: int | None = None,
    on_progress: ProgressFn | None = None,
    input_fn: InputFn | None = None,
    reduce: Callable[[Tensor], Tensor] | None = None,
) -> EvalResult:
    """Score ``model`` on a dataset without gradients and return losses and metrics.

    Args:
        model: a :class:`~maskdepth.model.wnet.WNet` (or any module returning ``WNetOutput``
            logits and, unless ``input_fn`` is given, having ``in_channels``).
        dataset_or_loader: a ``DataLoader`` (used as is) or a dataset of sample dicts
            ``bg``/``fg_bg`` (3, H, W), ``mask``/``depth`` (1, H, W), batched in order.
        loss_cfg: losses to report; default ``LossConfig()`` (the shipped model's losses).
        batch_size: batch size when a dataset is given (ignored for a DataLoader).
        device: where batches go; default: the device of the model's parameters. The
            model itself is not moved.
        max_batches: stop after this many batches (quick checks during training).
        on_progress: called as ``on_progress(done_batches, total_batches)`` after each
            batch; ``total_batches`` is None if the loader has no length.
        input_fn: ``batch -> (B, C, H, W)`` model input, with the batch already on
            ``device``; default ``model_input(bg, fg_bg, model.in_channels)``.
        reduce: sharded evaluation across processes: ``reduce(sums)`` returns the
            elementwise sum of a float64 vector over all processes (an all-reduce, e.g.
            :meth:`maskdepth.training.distributed.Context.all_reduce_sum`). Each process passes its
            own shard (possibly empty) and every one gets the result for the union.

    Returns:
        :class:`EvalResult` (every metric of :data:`~maskdepth.model.metrics.METRIC_NAMES`, including
        the depth edge F1 and rank correlation). The model's train/eval mode is restored afterwards.

    Raises:
        InputError: ``batch_size`` or ``max_batches`` below 1.
        DatasetError: the data is empty or its samples lack a required key.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    if max_batches is not None and max_batches < 1:
        raise InputError(f"max_batches must be >= 1 or None, got {max_batches}")
    loss_cfg = loss_cfg if loss_cfg is not None else LossConfig()
    device = torch.device(device) if device is not None else _model_device(model)
    build_input = input_fn if input_fn is not None else _default_input_fn(model)
    loader = _as_loader(dataset_or_loader, batch_size)

    try:
        total: int | None = len(loader)
    except TypeError:  # an IterableDataset without __len__
        total = None
    if max_batches is not None:
        total = max_batches if total is None else min(total, max_batches)

    accumulator = MetricAccumulator()
    loss_sums = {"total": 0.0, "mask": 0.0, "depth": 0.0}
    was_training = model.training
    model.eval()  # BatchNorm must use running stats, not the eval batch's
    try:
        with torch.inference_mode():
            for done, batch in enumerate(loader, start=1):
                _check_batch(batch)
                batch = {key: value.to(device) for key, value in batch.items() if isinstance(value, Tensor)}
                output = model(build_input(batch))
                losses = score_batch(output, batch, loss_cfg)
                accumulator.update(output, batch)
                # Losses are batch means; weight by batch size so the result is a per-image mean
                # even when the last batch is smaller.
                n = int(batch["mask"].shape[0])
                loss_sums["total"] += float(losses.total) * n
                loss_sums["mask"] += float(losses.mask) * n
                loss_sums["depth"] += float(losses.depth) * n
                if on_progress is not None:
                    on_progress(done, total)
                if max_batches is not None and done >= max_batches:
                    break
    finally:
        model.train(was_training)

    if reduce is not None:
        # Every process must call reduce, even with an empty shard, or the others wait forever.
        accumulator.reduce(reduce)
        summed = reduce(torch.tensor(list(loss_sums.values()), dtype=torch.float64)).tolist()
        loss_sums = dict(zip(loss_sums, summed, strict=True))
    n_images = accumulator.n_images
    if n_images == 0:
        raise DatasetError("the evaluation dataset is empty: give it at least one sample")
    return EvalResult(
        metrics=accumulator.compute(),
        loss=loss_sums["total"] / n_images,
        mask_loss=loss_sums["mask"] / n_images,
        depth_loss=loss_sums["depth"] / n_images,
        n_images=n_images,
    )


@torch.inference_mode()
def sample_predictions(model: nn.Module, batch: dict[str, Tensor]) -> list[dict[str, np.ndarray]]:
    """The model's mask and depth on a preview batch, beside its targets, as float arrays (the live view)."""
    from maskdepth.data.transforms import model_input

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

"""Per-image evaluation metrics for both heads, their accumulation over a split, and a table.

Every metric is computed per image and then averaged over images, so a small object
weighs as much as a large one (the seed summed over all pixels of a set instead, and
hard-coded ``.cuda()``). Works on any device.

Mask (``sigmoid(logits) > 0.5`` against ``target > 0.5``): Dice and IoU. An image whose
target and prediction are both empty scores 1.0 (nothing to find, nothing found).

Depth (``p = sigmoid(logits)``, target ``t`` in [0, 1], near = 1, far = 0): RMSE over all
pixels; abs-rel ``mean(|p - t| / t)`` and delta<1.25 ``mean(max(p/t, t/p) < 1.25)`` over
valid pixels ``t > DEPTH_EPS`` (t = 0 means "infinitely far", where ratios are
meaningless); SSIM with the same window as the SSIM loss. An image with no valid pixel
gets NaN for abs-rel and delta and is left out of those two means.

Two depth metrics test the seed's own claims ("BCE smooth but blurry, SSIM keeps edges"):
- edge F1: depth discontinuities are pixels next to a neighbour whose depth differs by
  more than EDGE_RATIO (10 %); predicted and true edges match within one pixel, and
  F1 = 2PR / (P + R). A blurred jump spreads over several pixels, none of which crosses
  the ratio, so blur shows up as lost recall. No true and no predicted edge scores 1.0.
- rank agreement: Spearman correlation between predicted and true depth over an image's
  pixels (ties get their average rank): is the nearer of two pixels predicted nearer,
  whatever the scale. NaN (left out of the mean) for a target of one constant depth; 0.0
  for a constant prediction of a varying target.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from maskdepth.model.losses import DEPTH_EPS, ssim_per_image
from maskdepth.model.wnet import WNetOutput

DELTA_THRESHOLD = 1.25
EDGE_RATIO = 1.1  # neighbouring depths differing by more than 10 % straddle a depth discontinuity
EDGE_TOLERANCE = 1  # pixels: a predicted edge this close to a true one counts as found

# Metric key -> display label, in display order.
METRIC_NAMES: dict[str, str] = {
    "mask_dice": "Mask Dice",
    "mask_iou": "Mask IoU",
    "depth_rmse": "Depth RMSE",
    "depth_absrel": "Depth abs-rel",
    "depth_delta1": "Depth δ<1.25",
    "depth_ssim": "Depth SSIM",
    "depth_edge_f1": "Depth edge F1",
    "depth_spearman": "Depth rank corr.",
}

HIGHER_IS_BETTER: dict[str, bool] = {
    "mask_dice": True,
    "mask_iou": True,
    "depth_rmse": False,
    "depth_absrel": False,
    "depth_delta1": True,
    "depth_ssim": True,
    "depth_edge_f1": True,
    "depth_spearman": True,
}


def _sum_per_image(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B,)."""
    return x.flatten(1).sum(dim=1)


def mask_metrics(logits: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Dice and IoU per image: logits, target (B, 1, H, W) -> ``{"mask_dice", "mask_iou"}`` each (B,)."""
    pred = (logits > 0).float()  # sigmoid(x) > 0.5  <=>  x > 0, without computing the sigmoid
    true = (target > 0.5).float()  # JPEG-decoded masks are only nearly binary
    inter = _sum_per_image(pred * true)
    total = _sum_per_image(pred) + _sum_per_image(true)
    union = total - inter
    # Both empty: total == union == 0 -> define as perfect (1.0) instead of 0/0.
    empty = total == 0
    dice = torch.where(empty, torch.ones_like(inter), 2 * inter / total.clamp_min(1))
    iou = torch.where(empty, torch.ones_like(inter), inter / union.clamp_min(1))
    return {"mask_dice": dice, "mask_iou": iou}


def depth_edges(depth: Tensor) -> Tensor:
    """Depth discontinuities: (B, 1, H, W) depth in [0, 1] -> (B, 1, H, W) bool.

    A pixel is an edge pixel if its right or lower neighbour's depth differs by a factor of
    more than EDGE_RATIO; both pixels of such a pair are marked. Depths are clamped to
    DEPTH_EPS first, so "infinitely far" (0) compares as very far rather than dividing by 0.
    """
    log = depth.clamp_min(DEPTH_EPS).log()
    jump = math.log(EDGE_RATIO)
    dx = (log[..., :, 1:] - log[..., :, :-1]).abs() > jump  # (B, 1, H, W-1)
    dy = (log[..., 1:, :] - log[..., :-1, :]).abs() > jump  # (B, 1, H-1, W)
    edges = torch.zeros_like(depth, dtype=torch.bool)
    edges[..., :, 1:] |= dx
    edges[..., :, :-1] |= dx
    edges[..., 1:, :] |= dy
    edges[..., :-1, :] |= dy
    return edges


def edge_f1(pred: Tensor, target: Tensor) -> Tensor:
    """F1 of predicted against true depth discontinuities, per image: (B, 1, H, W) each -> (B,)."""
    true, found = depth_edges(target).float(), depth_edges(pred).float()
    k = 2 * EDGE_TOLERANCE + 1

    def near(edges: Tensor) -> Tensor:  # within EDGE_TOLERANCE pixels of an edge
        return F.max_pool2d(edges, k, stride=1, padding=EDGE_TOLERANCE)

    n_true, n_found = _sum_per_image(true), _sum_per_image(found)
    precision = _sum_per_image(found * near(true)) / n_found.clamp_min(1)
    recall = _sum_per_image(true * near(found)) / n_true.clamp_min(1)
    f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
    # Nothing to find: perfect if nothing was found, else every found edge is a false one.
    return torch.where(n_true == 0, (n_found == 0).to(f1.dtype), f1)


def _average_ranks(x: Tensor) -> Tensor:
    """Ranks 0..N-1 along dim 1 of (B, N), tied values sharing their mean rank."""
    values, order = x.sort(dim=1)
    new_group = torch.ones_like(values, dtype=torch.long)
    new_group[:, 1:] = (values[:, 1:] != values[:, :-1]).long()
    group = new_group.cumsum(dim=1) - 1  # (B, N): group id of each sorted position
    position = torch.arange(x.shape[1], dtype=x.dtype, device=x.device).expand_as(values)
    sums = torch.zeros_like(values).scatter_add_(1, group, position)
    counts = torch.zeros_like(values).scatter_add_(1, group, torch.ones_like(values))
    mean_rank = (sums / counts.clamp_min(1)).gather(1, group)
    return torch.empty_like(mean_rank).scatter_(1, order, mean_rank)


def spearman(pred: Tensor, target: Tensor) -> Tensor:
    """Spearman rank correlation of each image's pixels: (B, 1, H, W) each -> (B,)."""
    a = _average_ranks(pred.flatten(1).double())
    b = _average_ranks(target.flatten(1).double())
    a, b = a - a.mean(dim=1, keepdim=True), b - b.mean(dim=1, keepdim=True)
    norm_a, norm_b = a.norm(dim=1), b.norm(dim=1)
    rho = (a * b).sum(dim=1) / (norm_a * norm_b).clamp_min(1e-12)
    rho = torch.where(norm_b == 0, torch.full_like(rho, math.nan), rho)  # constant target: undefined
    return rho.to(pred.dtype)  # a constant prediction (norm_a == 0) gives 0: no agreement


def depth_metrics(logits: Tensor, target: Tensor) -> dict[str, Tensor]:
    """RMSE, abs-rel, delta<1.25, SSIM, edge F1 and rank correlation per image.

    Args:
        logits: depth logits (B, 1, H, W).
        target: depth target (B, 1, H, W) in [0, 1], near = 1.

    Returns:
        ``{"depth_rmse", "depth_absrel", "depth_delta1", "depth_ssim", "depth_edge_f1",
        "depth_spearman"}``, each (B,); abs-rel and delta are NaN for an image without valid
        (t > DEPTH_EPS) pixels, the rank correlation for a constant target.
    """
    pred = torch.sigmoid(logits)
    target = target.to(pred.dtype)
    rmse = torch.sqrt(((pred - target) ** 2).flatten(1).mean(dim=1))

    valid = target > DEPTH_EPS
    n_valid = _sum_per_image(valid.float())
    # Divide by 1 where invalid so no inf/NaN is produced there (NaN * 0 would still be NaN).
    safe_t = torch.where(valid, target, torch.ones_like(target))
    rel = torch.where(valid, (pred - target).abs() / safe_t, torch.zeros_like(target))
    # p = 0 makes t / p = inf, which correctly fails the threshold.
    ratio = torch.maximum(pred / safe_t, safe_t / pred)
    hit = (valid & (ratio < DELTA_THRESHOLD)).float()
    nan = torch.full_like(n_valid, math.nan)
    absrel = torch.where(n_valid > 0, _sum_per_image(rel) / n_valid.clamp_min(1), nan)
    delta1 = torch.where(n_valid > 0, _sum_per_image(hit) / n_valid.clamp_min(1), nan)

    return {
        "depth_rmse": rmse,
        "depth_absrel": absrel,
        "depth_delta1": delta1,
        "depth_ssim": ssim_per_image(pred, target),
        "depth_edge_f1": edge_f1(pred, target),
        "depth_spearman": spearman(pred, target),
    }


def image_metrics(output: WNetOutput, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """All metrics for each image of a batch, keyed as :data:`METRIC_NAMES`, each (B,).

    Args:
        output: logits ``mask`` and ``depth``, each (B, 1, H, W).
        batch: targets ``mask`` and ``depth``, each (B, 1, H, W) in [0, 1].
    """
    with torch.no_grad():
        result: dict[str, Tensor] = {}
        for key, logits in (("mask", output.mask), ("depth", output.depth)):
            target = batch[key]
            if target.shape != logits.shape:
                raise ValueError(
                    f"{key} target has shape {tuple(target.shape)} but the {key} head gives "
                    f"{tuple(logits.shape)}"
                )
            logits = logits.detach().float()
            target = target.to(device=logits.device, dtype=logits.dtype)
            fn = mask_metrics if key == "mask" else depth_metrics
            result.update(fn(logits, target))
    return {name: result[name] for name in METRIC_NAMES}


class MetricAccumulator:
    """Accumulates per-image metrics over batches; :meth:`compute` gives per-image means.

    Sums are kept in float64 on the CPU, so the result does not depend on batch size or
    device. Images with a NaN metric (abs-rel/delta without valid depth) are left out of
    that metric's mean only; ``n_images`` counts every image seen.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        self.n_images = 0
        self._sums = dict.fromkeys(METRIC_NAMES, 0.0)
        self._counts = dict.fromkeys(METRIC_NAMES, 0)

    def update(self, output: WNetOutput, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Add one batch; returns its per-image metrics (each (B,)) for callers that want them."""
        per_image = image_metrics(output, batch)
        for name, values in per_image.items():
            values = values.detach().to("cpu", torch.float64)
            finite = torch.isfinite(values)
            self._sums[name] += float(values[finite].sum())
            self._counts[name] += int(finite.sum())
        self.n_images += int(output.mask.shape[0])
        return per_image

    def reduce(self, sum_fn: Callable[[Tensor], Tensor]) -> None:
        """Replace the sums and counts by ``sum_fn`` of them, e.g. an all-reduce across processes.

        ``sum_fn`` gets a float64 vector ``[n_images, sums..., counts...]`` and returns the
        elementwise sum of every process's vector; afterwards :meth:`compute` gives the
        per-image means over all images that any process saw (sharded evaluation).
        """
        names = list(METRIC_NAMES)
        packed = torch.tensor(
            [self.n_images, *(self._sums[k] for k in names), *(self._counts[k] for k in names)],
            dtype=torch.float64,
        )
        total = sum_fn(packed).tolist()
        self.n_images = round(total[0])
        self._sums = dict(zip(names, total[1 : 1 + len(names)], strict=True))
        self._counts = {k: round(v) for k, v in zip(names, total[1 + len(names) :], strict=True)}

    def compute(self) -> dict[str, float]:
        """Per-image mean of each metric (keys and order of :data:`METRIC_NAMES`).

        A metric no image could score (e.g. abs-rel when every depth target is 0) is NaN.
        """
        if self.n_images == 0:
            raise ValueError("MetricAccumulator.compute() called before any update(): no images to average")
        return {
            name: self._sums[name] / self._counts[name] if self._counts[name] else math.nan
            for name in METRIC_NAMES
        }


def _format_value(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def format_table(
    rows: Mapping[str, Mapping[str, float]],
    *,
    name_header: str = "model",
    digits: int = 4,
    mark_best: bool = False,
) -> str:
    """A Markdown table (also readable as plain text) with one row per model/variant.

    Args:
        rows: row name -> metrics, e.g. ``{"bce+bce": {"mask_dice": 0.91, ...}}``.
            Known metrics come first in :data:`METRIC_NAMES` order, labelled with an arrow
            (↑ higher is better, ↓ lower is better); other keys (e.g. ``loss``) follow in
            first-seen order under their own name. A value missing from a row shows ``-``,
            a NaN ``n/a``.
        name_header: header of the first column.
        digits: decimals shown.
        mark_best: bold (``**x**``) the best value of each known metric column.

    Returns:
        The table as one string, lines joined by newlines, no trailing newline.
    """
    seen: list[str] = []
    for metrics in rows.values():
        seen.extend(key for key in metrics if key not in seen)
    columns = [key for key in METRIC_NAMES if key in seen] + [key for key in seen if key not in METRIC_NAMES]

    headers = [name_header]
    for key in columns:
        if key in METRIC_NAMES:
            headers.append(f"{METRIC_NAMES[key]} {'↑' if HIGHER_IS_BETTER[key] else '↓'}")
        else:
            headers.append(key)

    best: dict[str, float] = {}
    if mark_best and len(rows) > 1:
        for key in columns:
            values = [float(m[key]) for m in rows.values() if key in m and math.isfinite(m[key])]
            if key in HIGHER_IS_BETTER and values:
                best[key] = max(values) if HIGHER_IS_BETTER[key] else min(values)

    body: list[list[str]] = []
    for name, metrics in rows.items():
        cells = [str(name)]
        for key in columns:
            text = _format_value(metrics.get(key), digits)
            if key in best and metrics.get(key) == best[key]:
                text = f"**{text}**"
            cells.append(text)
        body.append(cells)

    widths = [max(len(row[i]) for row in [headers, *body]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        # Names left-aligned, numbers right-aligned so decimals line up in plain text.
        numbers = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        padded = [cells[0].ljust(widths[0]), *numbers]
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join(["-" * widths[0]] + ["-" * (w - 1) + ":" for w in widths[1:]]) + " |"
    return "\n".join([line(headers), rule, *(line(cells) for cells in body)])

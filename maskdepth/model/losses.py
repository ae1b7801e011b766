"""Named losses for the two heads and the one function that scores a batch.

Every loss takes logits ``(B, 1, H, W)`` and a target ``(B, 1, H, W)`` in [0, 1] and
returns a scalar; the sigmoid is applied here, never by the model (see
docs/architecture.md). :func:`score_batch` is used by training *and* evaluation, so
the two can never disagree on which target a head is scored against.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from pytorch_msssim import ssim as _msssim_ssim
from torch import Tensor

from maskdepth.errors import TrainingError
from maskdepth.model.wnet import WNetOutput

# SSIM window: the standard Gaussian window of Wang et al. (2004), 11 taps with sigma 1.5,
# so our SSIM values are comparable with published ones. It fits every WNet output
# (H, W >= 32; a 32x32 map leaves a 22x22 field of valid windows). pytorch-msssim does NOT
# fail on a smaller image: it warns and silently skips smoothing along that axis, which
# gives wrong statistics. So for maps smaller than 11 px we shrink the window to the
# largest odd size that fits and scale sigma with it (same window-to-sigma ratio).
SSIM_WIN_SIZE = 11
SSIM_WIN_SIGMA = 1.5

DICE_EPS = 1.0  # Laplace smoothing: an empty target with an empty prediction scores loss 0
RMSE_EPS = 1e-8  # inside the sqrt, so d sqrt/dx stays finite when the error is exactly 0
# Depth targets at or below this are "no depth" (the sky, t = 0): left out of the log term of
# "bce+log" here and of abs-rel and delta<1.25 in maskdepth.model.metrics.
DEPTH_EPS = 1e-3
# Scales of the gradient-matching term of "bce+log+grad": the log-depth error's gradients are
# compared at full size and at every 2nd, 4th and 8th pixel (Ranftl et al. 2020, MiDaS, use 4).
GRAD_SCALES = 4

LossFn = Callable[[Tensor, Tensor, "LossConfig"], Tensor]


def ssim_window(height: int, width: int) -> tuple[int, float]:
    """Return ``(win_size, win_sigma)`` for SSIM on ``height x width`` maps.

    11 / 1.5 whenever it fits; otherwise the largest odd size <= min(H, W) with sigma
    scaled by the same ratio (see the module comment for why).
    """
    size = min(SSIM_WIN_SIZE, height, width)
    if size % 2 == 0:
        size -= 1  # pytorch-msssim needs an odd window
    size = max(size, 1)
    return size, SSIM_WIN_SIGMA * size / SSIM_WIN_SIZE


def ssim_per_image(pred: Tensor, target: Tensor) -> Tensor:
    """SSIM of each image, data range 1: pred, target (B, C, H, W) in [0, 1] -> (B,).

    The one SSIM helper shared by the loss and the metric, so both use the same window.
    """
    if pred.shape != target.shape:
        raise ValueError(f"SSIM needs equal shapes, got {tuple(pred.shape)} and {tuple(target.shape)}")
    win_size, win_sigma = ssim_window(pred.shape[-2], pred.shape[-1])
    # size_average=False averages over channels only, leaving one value per image.
    return _msssim_ssim(
        pred,
        target.to(pred.dtype),
        data_range=1.0,
        size_average=False,
        win_size=win_size,
        win_sigma=win_sigma,
    )


def _per_image_sum(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B,): sum over everything but the batch axis."""
    return x.flatten(1).sum(dim=1)


def bce_loss(logits: Tensor, target: Tensor, cfg: LossConfig) -> Tensor:
    """BCEWithLogits averaged over all pixels (numerically stable; no explicit sigmoid)."""
    return F.binary_cross_entropy_with_logits(logits, target)


def dice_loss(logits: Tensor, target: Tensor, cfg: LossConfig) -> Tensor:
    """Soft Dice loss ``1 - (2 sum(p t) + eps) / (sum p + sum t + eps)`` per image, averaged.

    Per image (not pooled over the batch) so a small object counts as much as a big one.
    """
    prob = torch.sigmoid(logits)
    inter = _per_image_sum(prob * target)
    denom = _per_image_sum(prob) + _per_image_sum(target)
    dice = (2.0 * inter + DICE_EPS) / (denom + DICE_EPS)
    return (1.0 - dice).mean()


def bce_dice_loss(logits: Tensor, target: Tensor, cfg: LossConfig) -> Tensor:
    """BCE + Dice, equal weights: BCE gives per-pixel gradients, Dice handles class imbalance."""
    return bce_loss(logits, target, cfg) + dice_loss(logits, target, cfg)


def ssim_loss(logits: Tensor, target: Tensor, cfg: LossConfig) -> Tensor:
    """``1 - SSIM(sigmoid(logits), target)``, averaged over images."""
    return 1.0 - ssim_per_image(torch.sigmoid(logits), target).mean()


def ssim_bce_loss(logits: Tensor, target: Tensor, cfg: LossConfig) -> Tensor:
    """``cfg.bce_weight * BCE + cfg.ssim_weight * (1 - SSIM)``; defaults 1 and 2 (the seed's)."""
    return cfg.bce_weight * bce_loss(logits, target, cfg) + cfg.ssim_weight * ssim_loss(logits, target, cfg)


def rmse_loss(logits: Tensor, target: Tensor, cfg: LossConfig) -> Tensor:
    """``sqrt(mean((sigmoid(logits) - target)^2) + eps)`` per image, averaged over images."""
    sq_err = (torch.sigmoid(logits) - target) ** 2
    return torch.sqrt(sq_err.flatten(1).mean(dim=1) + RMSE_EPS).mean()


def l1_loss(logits: Tensor, target: Tensor, cfg: LossConfig) -> Tensor:
    """Mean absolute error of ``sigmoid(logits)`` against the target."""
    return F.l1_loss(torch.sigmoid(logits), target)


def _log_error(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """``log sigmoid(logits) - log target`` and where it counts (target > DEPTH_EPS)."""
    return F.logsigmoid(logits) - target.clamp_min(DEPTH_EPS).log(), target > DEPTH_EPS


def log_l1_loss(logits: Tensor, target: Tensor, cfg: LossConfig) -> Tensor:
    """Mean ``|log sigmoid(logits) - log target|`` over pixels with depth (target > DEPTH_EPS).

    The error as a ratio, which is what delta<1.25 and abs-rel score: BCE's gradient is the
    absolute error, so a far wall at depth 0.2 predicted 0.25 (25 % off) weighs as little as a near
    one at 0.9 predicted 0.95. ``logsigmoid`` keeps it finite for any logit. A batch without any
    valid pixel scores 0.
    """
    err, valid = _log_error(logits, target)
    return torch.where(valid, err.abs(), torch.zeros_like(err)).sum() / valid.sum().clamp_min(1)


def bce_log_loss(logits: Tensor, target: Tensor, cfg: LossConfig) -> Tensor:
    """``BCE + cfg.log_weight * log-L1`` (:func:`log_l1_loss`): BCE for the sky and the scale, log for ratios."""
    return bce_loss(logits, target, cfg) + cfg.log_weight * log_l1_loss(logits, target, cfg)


def grad_match_loss(logits: Tensor, target: Tensor, cfg: LossConfig) -> Tensor:
    """Multi-scale gradient matching of log depth: mean ``|d/dx R| + |d/dy R|``, R the log error.

    MiDaS's gradient-matching term (Ranftl et al., TPAMI 2020) on log depth, so it is blind to the
    scene's overall scale: it asks that a step in depth (an object's edge before what is behind it)
    be a step of the same ratio in the prediction, and that a smooth surface stay smooth, wherever the
    scale guess lands. Averaged over GRAD_SCALES scales (every 1st, 2nd, 4th, 8th pixel); a difference
    counts only where both of its pixels have depth (not the sky). A batch without one scores 0.
    """
    err, valid = _log_error(logits, target)
    per_scale = []
    for k in range(GRAD_SCALES):
        e, v = err[..., :: 2**k, :: 2**k], valid[..., :: 2**k, :: 2**k]
        terms = torch.zeros((), dtype=err.dtype, device=err.device)
        count = torch.zeros((), dtype=err.dtype, device=err.device)
        for de, dv in (
            (e[..., :, 1:] - e[..., :, :-1], v[..., :, 1:] & v[..., :, :-1]),
            (e[..., 1:, :] - e[..., :-1, :], v[..., 1:, :] & v[..., :-1, :]),
        ):
            terms = terms + torch.where(dv, de.abs(), torch.zeros_like(de)).sum()
            count = count + dv.sum()
        per_scale.append(terms / count.clamp_min(1))
    return torch.stack(per_scale).mean()


def bce_log_grad_loss(logits: Tensor, target: Tensor, cfg: LossConfig) -> Tensor:
    """``bce+log`` plus ``cfg.grad_weight`` times :func:`grad_match_loss`: edges and flat surfaces by ratio."""
    return bce_log_loss(logits, target, cfg) + cfg.grad_weight * grad_match_loss(logits, target, cfg)


MASK_LOSSES: dict[str, LossFn] = {
    "bce": bce_loss,
    "dice": dice_loss,
    "bce+dice": bce_dice_loss,
}

DEPTH_LOSSES: dict[str, LossFn] = {
    "bce": bce_loss,
    "ssim": ssim_loss,
    "ssim+bce": ssim_bce_loss,
    "rmse": rmse_loss,
    "l1": l1_loss,
    "bce+log": bce_log_loss,
    "bce+log+grad": bce_log_grad_loss,
}


def loss_names() -> dict[str, list[str]]:
    """Valid loss names per head, for CLI choices and UI dropdowns: ``{"mask": [...], "depth": [...]}``."""
    return {"mask": list(MASK_LOSSES), "depth": list(DEPTH_LOSSES)}


def _check_name(head: str, name: str, registry: Mapping[str, LossFn]) -> None:
    if name not in registry:
        valid = ", ".join(repr(n) for n in registry)
        raise TrainingError(f"Unknown {head} loss {name!r}; choose one of: {valid}.")


@dataclass
class LossConfig:
    """Which loss each head uses and how the terms are weighted.

    ``total = mask_weight * mask_loss + depth_weight * depth_loss``; ``bce_weight`` and
    ``ssim_weight`` only matter for the ``"ssim+bce"`` depth loss, ``log_weight`` for ``"bce+log"``
    and ``"bce+log+grad"``, ``grad_weight`` for ``"bce+log+grad"``.
    The defaults are the shipped model's, the same as :class:`maskdepth.training.config.TrainConfig`'s
    (mask ``bce+dice``, depth ``bce+log+grad``; the seed used ``bce`` for both).
    """

    mask: str = "bce+dice"
    depth: str = "bce+log+grad"
    mask_weight: float = 1.0
    depth_weight: float = 1.0
    bce_weight: float = 1.0
    ssim_weight: float = 2.0
    log_weight: float = 0.25
    grad_weight: float = 2.0

    def __post_init__(self) -> None:
        _check_name("mask", self.mask, MASK_LOSSES)
        _check_name("depth", self.depth, DEPTH_LOSSES)
        for field in (
            "mask_weight",
            "depth_weight",
            "bce_weight",
            "ssim_weight",
            "log_weight",
            "grad_weight",
        ):
            value = getattr(self, field)
            if not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
                raise TrainingError(f"LossConfig.{field} must be a finite number >= 0, got {value!r}.")
        if self.mask_weight == 0 and self.depth_weight == 0:
            raise TrainingError("mask_weight and depth_weight are both 0: set at least one above 0.")


class LossBreakdown(NamedTuple):
    """Scalar losses of one batch: ``total = mask_weight * mask + depth_weight * depth``."""

    total: Tensor
    mask: Tensor
    depth: Tensor


def _target(batch: Mapping[str, Tensor], key: str, logits: Tensor) -> Tensor:
    """``batch[key]`` checked against the head's logits shape, as the logits' dtype/device."""
    if key not in batch:
        raise KeyError(f"batch has no {key!r} target (keys: {sorted(batch)})")
    target = batch[key]
    # Refuse broadcasting: a (B, H, W) target against (B, 1, H, W) logits would silently
    # broadcast to (B, B, H, W) in the Dice/SSIM sums.
    if target.shape != logits.shape:
        raise ValueError(
            f"{key} target has shape {tuple(target.shape)} but the {key} head gives {tuple(logits.shape)}"
        )
    return target.to(device=logits.device, dtype=logits.dtype)


def score_batch(output: WNetOutput, batch: Mapping[str, Tensor], cfg: LossConfig) -> LossBreakdown:
    """Score both heads of one batch; the only place the losses are applied.

    Args:
        output: model logits, ``mask`` and ``depth`` each (B, 1, H, W).
        batch: at least ``mask`` and ``depth`` targets, each (B, 1, H, W) in [0, 1].
        cfg: loss names and weights.

    The mask head is scored against ``batch["mask"]`` and the depth head against
    ``batch["depth"]`` (the seed's test loop mixed these up).
    """
    mask_loss = MASK_LOSSES[cfg.mask](output.mask, _target(batch, "mask", output.mask), cfg)
    depth_loss = DEPTH_LOSSES[cfg.depth](output.depth, _target(batch, "depth", output.depth), cfg)
    total = cfg.mask_weight * mask_loss + cfg.depth_weight * depth_loss
    return LossBreakdown(total=total, mask=mask_loss, depth=depth_loss)

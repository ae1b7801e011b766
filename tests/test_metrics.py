"""Tests for maskdepth.model.metrics: per-image mask/depth metrics, accumulation and the table."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from maskdepth.model.losses import DEPTH_LOSSES, LossConfig, ssim_per_image
from maskdepth.model.metrics import (
    HIGHER_IS_BETTER,
    METRIC_NAMES,
    MetricAccumulator,
    depth_edges,
    depth_metrics,
    edge_f1,
    format_table,
    image_metrics,
    mask_metrics,
    spearman,
)
from maskdepth.model.wnet import WNetOutput

H = W = 32
SAT = 20.0  # saturated logit: sigmoid(+-20) is 0/1 to float32 precision


def square(top: int, left: int, size: int, n: int = 1) -> torch.Tensor:
    """(n, 1, 32, 32) binary masks with one size x size square."""
    m = torch.zeros(n, 1, H, W)
    m[:, :, top : top + size, left : left + size] = 1.0
    return m


def to_logits(binary: torch.Tensor) -> torch.Tensor:
    return (binary * 2 - 1) * SAT


def depth_ramp(n: int = 2) -> torch.Tensor:
    """(n, 1, 32, 32) depth targets in [0.1, 0.9]."""
    ramp = torch.linspace(0.1, 0.9, W).expand(H, W)
    return ramp.expand(n, 1, H, W).contiguous()


def test_perfect_mask_scores_one_and_complement_scores_zero() -> None:
    target = torch.cat([square(4, 4, 10), square(8, 12, 16)])
    perfect = mask_metrics(to_logits(target), target)
    assert torch.allclose(perfect["mask_dice"], torch.ones(2))
    assert torch.allclose(perfect["mask_iou"], torch.ones(2))
    complement = mask_metrics(to_logits(1 - target), target)
    assert torch.allclose(complement["mask_dice"], torch.zeros(2))
    assert torch.allclose(complement["mask_iou"], torch.zeros(2))


def test_half_overlapping_squares() -> None:
    # Two 8x8 squares sharing half their area: intersection 32, sizes 64 + 64, union 96.
    target = square(8, 8, 8)
    pred = square(8, 12, 8)
    m = mask_metrics(to_logits(pred), target)
    assert m["mask_dice"].item() == pytest.approx(0.5)
    assert m["mask_iou"].item() == pytest.approx(1 / 3)


def test_mask_threshold_is_sigmoid_half() -> None:
    target = square(0, 0, 16)
    # Logits just above / below 0 are inside / outside; targets are thresholded at 0.5 too.
    assert mask_metrics(target * 0.01 - (1 - target) * 0.01, target * 0.9)["mask_dice"].item() == 1.0


def test_empty_target_conventions() -> None:
    empty = torch.zeros(1, 1, H, W)
    both_empty = mask_metrics(to_logits(empty), empty)
    assert both_empty["mask_dice"].item() == 1.0 and both_empty["mask_iou"].item() == 1.0
    false_alarm = mask_metrics(to_logits(square(0, 0, 4)), empty)
    assert false_alarm["mask_dice"].item() == 0.0 and false_alarm["mask_iou"].item() == 0.0


def test_mask_metrics_are_averaged_per_image_not_pooled() -> None:
    # Image 0: a big object predicted perfectly (Dice 1). Image 1: a small object half
    # found (Dice 0.5). Per-image mean 0.75; pooling the pixels would give ~0.99.
    target = torch.cat([square(0, 0, 24), square(0, 0, 4)])
    pred = torch.cat([square(0, 0, 24), square(0, 2, 4)])
    acc = MetricAccumulator()
    acc.update(
        WNetOutput(mask=to_logits(pred), depth=torch.zeros(2, 1, H, W)),
        {"mask": target, "depth": depth_ramp()},
    )
    result = acc.compute()
    assert result["mask_dice"] == pytest.approx(0.75)
    assert result["mask_iou"] == pytest.approx((1 + 1 / 3) / 2)
    pooled = 2 * (pred * target).sum() / (pred.sum() + target.sum())
    assert abs(pooled.item() - 0.75) > 0.2


def test_accumulator_is_per_image_across_uneven_batches() -> None:
    target = torch.cat([square(0, 0, 24), square(0, 0, 4), square(4, 4, 8)])
    pred = torch.cat([square(0, 0, 24), square(0, 2, 4), square(20, 20, 8)])  # Dice 1, 0.5, 0
    depth = depth_ramp(3)
    acc = MetricAccumulator()
    acc.update(
        WNetOutput(to_logits(pred[:1]), torch.zeros(1, 1, H, W)), {"mask": target[:1], "depth": depth[:1]}
    )
    acc.update(
        WNetOutput(to_logits(pred[1:]), torch.zeros(2, 1, H, W)), {"mask": target[1:], "depth": depth[1:]}
    )
    assert acc.n_images == 3
    assert acc.compute()["mask_dice"] == pytest.approx(0.5)  # (1 + 0.5 + 0) / 3, not (1 + 0.25) / 2
    acc.reset()
    with pytest.raises(ValueError, match="no images"):
        acc.compute()


def test_perfect_depth() -> None:
    target = depth_ramp()
    m = depth_metrics(torch.logit(target), target)
    assert torch.allclose(m["depth_rmse"], torch.zeros(2), atol=1e-5)
    assert torch.allclose(m["depth_absrel"], torch.zeros(2), atol=1e-5)
    assert torch.equal(m["depth_delta1"], torch.ones(2))
    assert torch.allclose(m["depth_ssim"], torch.ones(2), atol=1e-4)
    assert torch.equal(m["depth_edge_f1"], torch.ones(2))
    assert torch.allclose(m["depth_spearman"], torch.ones(2), atol=1e-6)


@pytest.mark.parametrize(
    ("t", "rmse", "absrel", "delta1"), [(0.25, 0.25, 1.0, 0.0), (0.45, 0.05, 0.05 / 0.45, 1.0)]
)
def test_depth_known_values(t: float, rmse: float, absrel: float, delta1: float) -> None:
    logits = torch.zeros(1, 1, H, W)  # prediction 0.5 everywhere
    m = depth_metrics(logits, torch.full((1, 1, H, W), t))
    assert m["depth_rmse"].item() == pytest.approx(rmse, abs=1e-6)
    assert m["depth_absrel"].item() == pytest.approx(absrel, abs=1e-5)
    assert m["depth_delta1"].item() == delta1


def test_abs_rel_and_delta_ignore_pixels_without_depth() -> None:
    target = depth_ramp(1)
    target[..., :, :16] = 0.0  # "infinitely far": no ratio defined
    pred = target.clone()
    pred[..., :, :16] = 0.7  # wrong only where the target has no depth
    m = depth_metrics(torch.logit(pred), target)
    assert m["depth_absrel"].item() == pytest.approx(0.0, abs=1e-5)
    assert m["depth_delta1"].item() == 1.0
    assert m["depth_rmse"].item() > 0.3  # RMSE still sees every pixel


def test_image_without_valid_depth_is_left_out_of_abs_rel_mean() -> None:
    target = torch.cat([torch.full((1, 1, H, W), 0.5), torch.zeros(1, 1, H, W)])
    logits = torch.zeros(2, 1, H, W)  # 0.5: exact on image 0
    per_image = depth_metrics(logits, target)
    assert per_image["depth_absrel"][0].item() == pytest.approx(0.0)
    assert math.isnan(per_image["depth_absrel"][1])
    acc = MetricAccumulator()
    acc.update(
        WNetOutput(to_logits(torch.zeros(2, 1, H, W)), logits),
        {"mask": torch.zeros(2, 1, H, W), "depth": target},
    )
    result = acc.compute()
    assert acc.n_images == 2
    assert result["depth_absrel"] == pytest.approx(0.0) and result["depth_delta1"] == 1.0
    assert result["depth_rmse"] == pytest.approx(0.25)  # (0 + 0.5) / 2 over both images


def step_depth(n: int = 1) -> torch.Tensor:
    """(n, 1, 32, 32): a near square (0.8) in front of a far wall (0.2): one closed depth edge."""
    return torch.full((n, 1, H, W), 0.2) + 0.6 * square(8, 8, 16, n)


def test_depth_edges_mark_jumps_not_slopes() -> None:
    edges = depth_edges(step_depth())
    assert edges[0, 0, 8:24, 7:9].all() and edges[0, 0, 7:9, 8:24].all()  # both sides of the jump
    assert not edges[0, 0, 12:20, 12:20].any() and not edges[0, 0, 28:, :].any()
    gentle = torch.linspace(0.5, 0.9, W).expand(1, 1, H, W)  # < 3 % from pixel to pixel, like a floor
    assert not depth_edges(gentle).any()


def test_edge_f1_rewards_sharp_edges_and_punishes_blur() -> None:
    target = step_depth()
    assert edge_f1(target, target).item() == 1.0
    shifted = torch.roll(target, shifts=1, dims=-1)  # one pixel off: within the tolerance
    assert edge_f1(shifted, target).item() == pytest.approx(1.0)
    f1 = [
        edge_f1(F.avg_pool2d(target, k, stride=1, padding=k // 2, count_include_pad=False), target).item()
        for k in (3, 7, 11)  # 3: the jump spreads over 3 pixels, still within the tolerance
    ]
    assert f1[0] == pytest.approx(1.0) and f1[0] > f1[1] > f1[2] and f1[1] < 0.75  # wider blur, lower F1
    flat = torch.full_like(target, 0.5)
    assert edge_f1(flat, target).item() == 0.0
    assert edge_f1(flat, flat).item() == 1.0 and edge_f1(target, flat).item() == 0.0  # nothing to find


def test_spearman_is_rank_agreement_with_ties() -> None:
    target = depth_ramp(1)  # columns tied: 32 pixels share each value
    assert spearman(target, target).item() == pytest.approx(1.0)
    assert spearman(target**3, target).item() == pytest.approx(1.0)  # any increasing map: same ranks
    assert spearman(1 - target, target).item() == pytest.approx(-1.0)
    assert spearman(torch.full_like(target, 0.5), target).item() == 0.0
    assert math.isnan(spearman(target, torch.full_like(target, 0.5)).item())
    noise = torch.rand(1, 1, H, W, generator=torch.Generator().manual_seed(0))
    assert abs(spearman(noise, target).item()) < 0.2


def test_depth_ssim_shares_the_loss_helper() -> None:
    target = depth_ramp()
    logits = torch.randn(2, 1, H, W, generator=torch.Generator().manual_seed(0))
    metric = depth_metrics(logits, target)["depth_ssim"]
    assert torch.allclose(metric, ssim_per_image(torch.sigmoid(logits), target))
    loss = DEPTH_LOSSES["ssim"](logits, target, LossConfig(depth="ssim"))
    assert metric.mean().item() == pytest.approx(1 - loss.item(), abs=1e-6)


def test_image_metrics_keys_shapes_and_no_grad() -> None:
    mask = square(4, 4, 8, n=2)
    logits = WNetOutput(mask=torch.randn(2, 1, H, W, requires_grad=True), depth=torch.randn(2, 1, H, W))
    result = image_metrics(logits, {"mask": mask, "depth": depth_ramp()})
    assert list(result) == list(METRIC_NAMES)
    for value in result.values():
        assert value.shape == (2,) and not value.requires_grad
    assert set(HIGHER_IS_BETTER) == set(METRIC_NAMES)
    with pytest.raises(ValueError, match="mask target has shape"):
        image_metrics(logits, {"mask": mask[:, 0], "depth": depth_ramp()})


def test_format_table() -> None:
    rows = {
        "bce+bce": {"mask_dice": 0.9, "depth_rmse": 0.1, "loss": 0.5},
        "bce+ssim": {"mask_dice": 0.8, "depth_rmse": 0.05, "depth_absrel": float("nan")},
    }
    table = format_table(rows, name_header="variant", mark_best=True)
    lines = table.splitlines()
    assert len(lines) == 4
    assert len({len(line) for line in lines}) == 1  # columns aligned for plain-text reading
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    # Known metrics first in METRIC_NAMES order with direction arrows, extra keys after.
    assert header == ["variant", "Mask Dice ↑", "Depth RMSE ↓", "Depth abs-rel ↓", "loss"]
    assert lines[1].startswith("| ---") and lines[1].rstrip(" |").endswith(":")
    first = [cell.strip() for cell in lines[2].strip("|").split("|")]
    second = [cell.strip() for cell in lines[3].strip("|").split("|")]
    assert first == ["bce+bce", "**0.9000**", "0.1000", "-", "0.5000"]
    assert second == ["bce+ssim", "0.8000", "**0.0500**", "n/a", "-"]
    assert "**" not in format_table({"only": {"mask_dice": 0.9}}, mark_best=True)

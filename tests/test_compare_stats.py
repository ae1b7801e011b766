"""Tests for maskdepth.compare.stats: intervals, paired differences and what the verdict may claim."""

from __future__ import annotations

import pytest

from maskdepth.compare.stats import NO_DIFFERENCE, interval, measured, paired, t_quantile, verdict
from maskdepth.model.metrics import METRIC_NAMES


def seeds(values: dict[str, list[float]]) -> list[dict]:
    """Per-seed entries with the given metric values (other metrics 0.5)."""
    n = len(next(iter(values.values())))
    return [{"seed": k, "metrics": {m: values.get(m, [0.5] * n)[k] for m in METRIC_NAMES}} for k in range(n)]


def test_t_interval_known_values() -> None:
    assert t_quantile(2) == pytest.approx(4.303, abs=1e-3)
    stat = interval([1.0, 2.0, 3.0])  # mean 2, sd 1: half width 4.303 / sqrt(3)
    assert stat["mean"] == pytest.approx(2.0) and stat["n"] == 3
    assert stat["high"] - stat["mean"] == pytest.approx(4.303 / 3**0.5, abs=1e-3)
    assert interval([0.7]) == {"mean": 0.7, "low": None, "high": None, "n": 1}
    assert interval([float("nan"), None])["mean"] is None


def test_paired_differences_cancel_what_seeds_share() -> None:
    # Seed-to-seed spread (0.80 / 0.85 / 0.90) is large, the paired gap (+0.02) is the same on every seed.
    base = seeds({"mask_iou": [0.80, 0.85, 0.90]})
    other = seeds({"mask_iou": [0.82, 0.87, 0.92]})
    diff = paired(other, base)["mask_iou"]
    assert diff["mean"] == pytest.approx(0.02) and diff["low"] == pytest.approx(0.02)
    assert "better Mask IoU +0.020" in measured(paired(other, base))
    assert interval([0.82, 0.87, 0.92])["low"] < interval([0.80, 0.85, 0.90])["high"]  # unpaired: overlap


def test_a_difference_inside_the_noise_is_not_claimed() -> None:
    base = seeds({"mask_iou": [0.849, 0.814, 0.819]})  # the bce|bce numbers over seeds 0/1/2
    other = seeds({"mask_iou": [0.839, 0.826, 0.815]})
    assert measured(paired(other, base)) == NO_DIFFERENCE


def test_lower_is_better_metrics_read_the_right_way() -> None:
    base = seeds({"depth_rmse": [0.10, 0.12, 0.11]})
    worse = seeds({"depth_rmse": [0.13, 0.15, 0.14]})
    assert measured(paired(worse, base)).startswith("worse Depth RMSE +0.030")


def test_verdict_claims_only_what_intervals_back() -> None:
    base = seeds({"depth_delta1": [0.85, 0.90, 0.88]})
    ssim = seeds({"depth_delta1": [0.94, 0.94, 0.94]})
    same = seeds({"depth_delta1": [0.86, 0.88, 0.89]})
    variants = {
        "bce|bce": {"description": "(i)", "seeds": base},
        "bce|ssim": {"description": "(iii)", "seeds": ssim, "vs_baseline": paired(ssim, base)},
        "dice|bce": {"description": "dice", "seeds": same, "vs_baseline": paired(same, base)},
        "cont": {"description": "c", "seeds": base, "vs_baseline": paired(base, base)},
        "restart": {"description": "r", "seeds": ssim, "vs_baseline": paired(ssim, base)},
    }
    text = verdict(variants, "bce|bce", ("cont", "restart"), {"bce|ssim": "SSIM compares windows."}, 512)
    lines = text.splitlines()
    ssim_line = next(line for line in lines if line.startswith("- **bce|ssim**"))
    assert "SSIM compares windows." in ssim_line and "better Depth δ<1.25 +0.063" in ssim_line
    assert "Mask IoU" not in ssim_line  # equal on every seed: nothing to claim
    assert NO_DIFFERENCE in next(line for line in lines if line.startswith("- **dice|bce**"))
    assert "Baseline" in next(line for line in lines if line.startswith("- **bce|bce**"))
    assert "Restart against continue: better Depth δ<1.25" in text
    assert "3 seed(s)" in text and "512 held-out samples" in text


def test_one_seed_gives_no_claim() -> None:
    one = seeds({"mask_iou": [0.8]})
    better = seeds({"mask_iou": [0.9]})
    assert "one seed" in measured(paired(better, one))
    assert verdict({}, None, None, {}, 0) == "no variants were trained"
    text = verdict({"bce|bce": {"description": "(i)", "seeds": one}}, "bce|bce", None, {}, 5)
    assert "Only one variant" in text

"""Tests for maskdepth.model.losses: the registries, LossConfig validation and score_batch."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from maskdepth.errors import MaskDepthError, TrainingError
from maskdepth.model.losses import (
    DEPTH_LOSSES,
    MASK_LOSSES,
    LossBreakdown,
    LossConfig,
    grad_match_loss,
    loss_names,
    score_batch,
    ssim_per_image,
    ssim_window,
)
from maskdepth.model.wnet import WNetOutput

B, H, W = 2, 32, 32


def make_targets() -> tuple[torch.Tensor, torch.Tensor]:
    """A mask (2, 1, 32, 32) with a different square per image, and a depth ramp in [0.1, 0.9]."""
    mask = torch.zeros(B, 1, H, W)
    mask[0, :, 4:20, 6:22] = 1.0
    mask[1, :, 10:30, 2:14] = 1.0
    ramp = torch.linspace(0.1, 0.9, W).expand(H, W)
    depth = torch.stack([ramp, ramp.T]).unsqueeze(1).contiguous()
    return mask, depth


def perfect_logits(target: torch.Tensor) -> torch.Tensor:
    """Logits whose sigmoid equals the target (saturated at +-12 for binary 0/1 values)."""
    return torch.logit(target.clamp(1e-4, 1 - 1e-4)).clamp(-12, 12)


def predictions(target: torch.Tensor) -> list[torch.Tensor]:
    """Logits from best to worst: perfect, noisy, inverted (sigmoid = 1 - target)."""
    gen = torch.Generator().manual_seed(0)
    perfect = perfect_logits(target)
    # Kept off 0: a log-ratio loss (bce+log) rightly scores a near-0 guess at depth 0.1 as far off.
    noisy = perfect_logits((target + 0.3 * torch.randn(target.shape, generator=gen)).clamp(0.05, 1))
    inverted = perfect_logits(1 - target)
    return [perfect, noisy, inverted]


ALL_LOSSES = [("mask", name) for name in MASK_LOSSES] + [("depth", name) for name in DEPTH_LOSSES]


@pytest.mark.parametrize(("head", "name"), ALL_LOSSES)
def test_each_loss_is_finite_differentiable_and_ranks_predictions(head: str, name: str) -> None:
    mask, depth = make_targets()
    target = mask if head == "mask" else depth
    fn = (MASK_LOSSES if head == "mask" else DEPTH_LOSSES)[name]
    cfg = LossConfig()
    values = []
    for logits in predictions(target):
        logits = logits.clone().requires_grad_(True)
        loss = fn(logits, target, cfg)
        assert loss.ndim == 0 and torch.isfinite(loss)
        loss.backward()
        assert logits.grad is not None and torch.isfinite(logits.grad).all()
        values.append(loss.item())
    perfect, noisy, inverted = values
    if name == "bce+log+grad":
        # Its gradient term scores noise of 0.3 at every pixel (a false edge between every two pixels) about
        # as badly as the inverted ramp, so only "perfect is best" holds for it.
        assert perfect < min(noisy, inverted), f"{head} {name}: {values}"
    else:
        assert perfect < noisy < inverted, f"{head} {name}: {values}"


def test_known_values() -> None:
    cfg = LossConfig()
    zeros = torch.zeros(B, 1, H, W)
    # sigmoid(0) = 0.5 against a target of 0: BCE = ln 2, RMSE = L1 = 0.5.
    assert DEPTH_LOSSES["bce"](zeros, zeros, cfg).item() == pytest.approx(math.log(2), abs=1e-6)
    assert DEPTH_LOSSES["rmse"](zeros, zeros, cfg).item() == pytest.approx(0.5, abs=1e-6)
    assert DEPTH_LOSSES["l1"](zeros, zeros, cfg).item() == pytest.approx(0.5, abs=1e-6)
    mask, _ = make_targets()
    # Saturated perfect / complementary masks: Dice loss 0 / ~1 (up to the eps smoothing).
    assert MASK_LOSSES["dice"](perfect_logits(mask), mask, cfg).item() == pytest.approx(0.0, abs=1e-3)
    assert MASK_LOSSES["dice"](perfect_logits(1 - mask), mask, cfg).item() == pytest.approx(1.0, abs=1e-2)
    # Empty target and empty prediction is a perfect Dice score, not 0/0.
    empty = torch.zeros(B, 1, H, W)
    assert MASK_LOSSES["dice"](torch.full_like(empty, -30.0), empty, cfg).item() == pytest.approx(
        0.0, abs=1e-3
    )


def test_dice_loss_is_averaged_per_image() -> None:
    mask, _ = make_targets()
    cfg = LossConfig()
    logits = predictions(mask)[1]
    per_image = [MASK_LOSSES["dice"](logits[i : i + 1], mask[i : i + 1], cfg).item() for i in range(B)]
    assert MASK_LOSSES["dice"](logits, mask, cfg).item() == pytest.approx(sum(per_image) / B, abs=1e-6)


def test_rmse_gradient_is_finite_at_zero_error() -> None:
    # Target exactly equal to sigmoid(logits): without the eps, d sqrt(x)/dx at 0 gives NaN.
    logits = torch.randn(B, 1, H, W, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    target = torch.sigmoid(logits).detach()
    loss = DEPTH_LOSSES["rmse"](logits, target, LossConfig())
    loss.backward()
    assert loss.item() < 1e-3
    assert torch.isfinite(logits.grad).all()


def test_ssim_bce_uses_configured_weights() -> None:
    _, depth = make_targets()
    logits = predictions(depth)[1]
    bce = DEPTH_LOSSES["bce"](logits, depth, LossConfig()).item()
    ssim_term = DEPTH_LOSSES["ssim"](logits, depth, LossConfig()).item()
    default = DEPTH_LOSSES["ssim+bce"](logits, depth, LossConfig()).item()
    assert default == pytest.approx(1.0 * bce + 2.0 * ssim_term, rel=1e-5)
    custom = DEPTH_LOSSES["ssim+bce"](logits, depth, LossConfig(bce_weight=0.5, ssim_weight=3.0)).item()
    assert custom == pytest.approx(0.5 * bce + 3.0 * ssim_term, rel=1e-5)


def test_ssim_window_fits_small_maps_without_skipping_smoothing() -> None:
    assert ssim_window(32, 32) == (11, 1.5)  # the standard window fits every WNet output
    assert ssim_window(64, 224) == (11, 1.5)
    size, sigma = ssim_window(8, 10)
    assert size == 7 and sigma == pytest.approx(1.5 * 7 / 11)
    x = torch.rand(2, 1, 8, 10, generator=torch.Generator().manual_seed(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pytorch-msssim warns when it skips smoothing
        same = ssim_per_image(x, x)
    assert same.shape == (2,)
    assert torch.allclose(same, torch.ones(2), atol=1e-5)


def test_loss_names_match_registries() -> None:
    assert loss_names() == {
        "mask": ["bce", "dice", "bce+dice"],
        "depth": ["bce", "ssim", "ssim+bce", "rmse", "l1", "bce+log", "bce+log+grad"],
    }


def test_the_log_term_scores_ratios_and_leaves_the_sky_out() -> None:
    cfg = LossConfig(depth="bce+log", log_weight=0.5)
    target = torch.tensor([0.0, 0.2, 0.8]).view(1, 1, 1, 3)  # the sky, a far wall, a near object
    guess = torch.tensor([0.3, 0.25, 0.85]).view(1, 1, 1, 3)  # +0.05 at each; the sky's 0.3 is BCE's
    logits = torch.logit(guess)
    far, near = math.log(0.25 / 0.2), math.log(0.85 / 0.8)
    assert DEPTH_LOSSES["bce+log"](logits, target, cfg).item() == pytest.approx(
        DEPTH_LOSSES["bce"](logits, target, cfg).item() + 0.5 * (far + near) / 2, rel=1e-5
    )
    assert far > 3 * near  # the same absolute error weighs more where the depth is small
    sky = torch.zeros(1, 1, 2, 2)  # no pixel with depth: the log term is 0, not NaN
    assert DEPTH_LOSSES["bce+log"](torch.full_like(sky, -30.0), sky, cfg).item() == pytest.approx(
        0.0, abs=1e-6
    )


def _step_scene() -> torch.Tensor:
    """A near object (0.8) before a far wall (0.2), with a strip of sky (0) along the top: (1, 1, 32, 32)."""
    depth = torch.full((1, 1, H, W), 0.2)
    depth[..., 12:26, 8:20] = 0.8
    depth[..., :4, :] = 0.0
    return depth


def test_gradient_matching_ignores_the_scale_and_scores_the_edges() -> None:
    cfg = LossConfig(depth="bce+log+grad")
    depth = _step_scene()
    halved = torch.where(depth > 0, depth / 2, torch.full_like(depth, 0.3))  # every ratio kept; sky anything
    assert grad_match_loss(torch.logit(halved), depth, cfg).item() == pytest.approx(0.0, abs=1e-5)
    assert DEPTH_LOSSES["bce+log"](torch.logit(halved), depth, cfg).item() > 0.1  # the scale is off
    # The same scene without the object's edge (one flat wall at the right scale) is what it catches.
    flat = torch.logit(torch.full_like(depth, 0.2))
    softened = torch.logit(
        torch.where(depth > 0.5, torch.full_like(depth, 0.35), torch.full_like(depth, 0.2))
    )
    missed, weak = grad_match_loss(flat, depth, cfg).item(), grad_match_loss(softened, depth, cfg).item()
    assert missed > weak > 0.01
    # Where both pixels of a difference are sky (or one is), it does not count, so a sky of any value is free.
    sky_noise = torch.logit(depth.clamp_min(1e-3)).clone()
    sky_noise[..., :4, :] = torch.randn(1, 1, 4, W, generator=torch.Generator().manual_seed(3)) * 5
    assert grad_match_loss(sky_noise, depth, cfg).item() == pytest.approx(0.0, abs=1e-4)
    all_sky = torch.zeros(1, 1, 8, 8)
    assert grad_match_loss(torch.randn(1, 1, 8, 8), all_sky, cfg).item() == 0.0


def test_bce_log_grad_adds_the_weighted_gradient_term() -> None:
    depth = _step_scene()
    logits = torch.logit(torch.full_like(depth, 0.3))
    for weight in (0.5, 2.0):
        cfg = LossConfig(depth="bce+log+grad", grad_weight=weight)
        expected = DEPTH_LOSSES["bce+log"](logits, depth, cfg) + weight * grad_match_loss(logits, depth, cfg)
        assert DEPTH_LOSSES["bce+log+grad"](logits, depth, cfg).item() == pytest.approx(
            expected.item(), rel=1e-6
        )
    with pytest.raises(TrainingError, match="grad_weight"):
        LossConfig(grad_weight=-1.0)


@pytest.mark.parametrize(("field", "registry"), [("mask", MASK_LOSSES), ("depth", DEPTH_LOSSES)])
def test_unknown_loss_name_lists_valid_names(field: str, registry: dict) -> None:
    with pytest.raises(TrainingError) as info:
        LossConfig(**{field: "focal"})
    message = str(info.value)
    assert "focal" in message
    for name in registry:
        assert repr(name) in message
    assert isinstance(info.value, MaskDepthError)


@pytest.mark.parametrize(
    "bad", [{"mask_weight": -1.0}, {"ssim_weight": float("nan")}, {"mask_weight": 0, "depth_weight": 0}]
)
def test_bad_weights_are_rejected(bad: dict) -> None:
    with pytest.raises(TrainingError):
        LossConfig(**bad)


def test_score_batch_total_is_weighted_sum() -> None:
    mask, depth = make_targets()
    output = WNetOutput(mask=predictions(mask)[1], depth=predictions(depth)[1])
    batch = {"mask": mask, "depth": depth}
    cfg = LossConfig(mask="bce+dice", depth="ssim+bce", mask_weight=0.3, depth_weight=2.0)
    result = score_batch(output, batch, cfg)
    assert isinstance(result, LossBreakdown)
    assert result.mask.item() == pytest.approx(MASK_LOSSES["bce+dice"](output.mask, mask, cfg).item())
    assert result.depth.item() == pytest.approx(DEPTH_LOSSES["ssim+bce"](output.depth, depth, cfg).item())
    assert result.total.item() == pytest.approx(
        0.3 * result.mask.item() + 2.0 * result.depth.item(), rel=1e-6
    )


@pytest.mark.parametrize("depth_loss", list(DEPTH_LOSSES))
def test_score_batch_scores_each_head_against_its_own_target(depth_loss: str) -> None:
    # Mask and depth targets differ. A perfect output must score (near) 0 on the depth
    # head; an output whose depth head reproduces the MASK target must score much worse.
    # If score_batch compared depth with batch["mask"] (the seed's bug), this flips.
    mask, depth = make_targets()
    batch = {"mask": mask, "depth": depth}
    cfg = LossConfig(mask="dice", depth=depth_loss)
    right = score_batch(WNetOutput(mask=perfect_logits(mask), depth=perfect_logits(depth)), batch, cfg)
    swapped = score_batch(WNetOutput(mask=perfect_logits(depth), depth=perfect_logits(mask)), batch, cfg)
    assert right.depth.item() < swapped.depth.item() - 0.1
    assert right.mask.item() < swapped.mask.item() - 0.1
    assert right.mask.item() == pytest.approx(0.0, abs=1e-3)
    if depth_loss in ("ssim", "rmse", "l1"):  # losses whose minimum is 0
        assert right.depth.item() == pytest.approx(0.0, abs=1e-3)


def test_score_batch_rejects_mismatched_target_shape() -> None:
    mask, depth = make_targets()
    output = WNetOutput(mask=perfect_logits(mask), depth=perfect_logits(depth))
    with pytest.raises(ValueError, match="depth target has shape"):
        score_batch(output, {"mask": mask, "depth": depth[:, 0]}, LossConfig(depth="l1"))


def test_loss_config_defaults_are_the_train_config_defaults() -> None:
    # One recipe: evaluation's default losses (LossConfig()) are the ones training uses by default.
    from maskdepth.training.config import TrainConfig

    assert TrainConfig(steps=1).loss_config() == LossConfig()
    assert LossConfig().mask == "bce+dice"

"""Tests for maskdepth.training.evaluate on a tiny WNet and a tiny in-memory dataset."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from maskdepth import WNet
from maskdepth.errors import DatasetError, InputError
from maskdepth.model.losses import LossConfig, score_batch
from maskdepth.model.metrics import METRIC_NAMES
from maskdepth.model.wnet import WNetOutput
from maskdepth.training.evaluate import EvalResult, evaluate

H = W = 32
N = 5


def tiny_dataset(n: int = N) -> list[dict[str, torch.Tensor]]:
    """n samples in the project's sample format: bg, fg_bg (3, 32, 32), mask, depth (1, 32, 32)."""
    gen = torch.Generator().manual_seed(0)
    samples = []
    for i in range(n):
        bg = torch.rand(3, H, W, generator=gen)
        mask = torch.zeros(1, H, W)
        mask[:, 4 + i : 16 + i, 6 : 14 + 2 * i] = 1.0
        fg_bg = torch.where(mask.bool(), torch.rand(3, 1, 1, generator=gen).expand(3, H, W), bg)
        depth = (torch.linspace(0.2, 0.6, H).view(1, H, 1).expand(1, H, W) + 0.3 * mask).clamp(0, 1)
        samples.append({"bg": bg, "fg_bg": fg_bg, "mask": mask, "depth": depth.contiguous()})
    return samples


def tiny_model(in_channels: int = 6) -> WNet:
    torch.manual_seed(0)
    model = WNet(in_channels=in_channels, base_width=4)
    # One training-mode pass so BatchNorm running stats differ from their init values:
    # then eval mode (running stats) and train mode (batch stats) give different outputs.
    with torch.no_grad():
        model(torch.randn(4, in_channels, H, W) * 3 + 1)
    return model


class Spy(nn.Module):
    """Wraps a model and records the inputs it is called with."""

    def __init__(self, model: WNet) -> None:
        super().__init__()
        self.model = model
        self.in_channels = model.in_channels
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> WNetOutput:
        self.inputs.append(x.clone())
        return self.model(x)


def test_evaluate_returns_all_metrics_and_restores_train_mode() -> None:
    model = tiny_model()
    model.train()
    result = evaluate(model, tiny_dataset(), batch_size=2)
    assert isinstance(result, EvalResult)
    assert list(result.metrics) == list(METRIC_NAMES)
    assert all(math.isfinite(v) for v in result.metrics.values())
    assert 0.0 <= result.metrics["mask_dice"] <= 1.0 and 0.0 <= result.metrics["depth_delta1"] <= 1.0
    assert result.n_images == N
    assert result.loss == pytest.approx(result.mask_loss + result.depth_loss, rel=1e-6)
    assert model.training
    model.eval()
    evaluate(model, tiny_dataset(), batch_size=2)
    assert not model.training


def test_evaluate_matches_score_batch_in_eval_mode_and_ignores_batch_size() -> None:
    model = tiny_model()
    model.train()
    data = tiny_dataset()
    cfg = LossConfig(mask="bce+dice", depth="ssim+bce")
    whole = evaluate(model, data, loss_cfg=cfg, batch_size=N)
    batched = evaluate(model, data, loss_cfg=cfg, batch_size=2)  # batches of 2, 2, 1
    # Per-image averaging and eval-mode BatchNorm make the result independent of batching
    # (losses too, since every image has the same number of pixels).
    for key in METRIC_NAMES:
        assert batched.metrics[key] == pytest.approx(whole.metrics[key], abs=1e-5)
    assert batched.loss == pytest.approx(whole.loss, rel=1e-4)

    batch = {k: torch.stack([s[k] for s in data]) for k in data[0]}
    x = torch.cat([batch["bg"], batch["fg_bg"]], dim=1) * 2 - 1
    model.eval()
    with torch.no_grad():
        expected = score_batch(model(x), batch, cfg)
    assert whole.mask_loss == pytest.approx(expected.mask.item(), rel=1e-5)
    assert whole.depth_loss == pytest.approx(expected.depth.item(), rel=1e-5)
    model.train()
    with torch.no_grad():
        train_mode = score_batch(model(x), batch, cfg)
    assert abs(train_mode.total.item() - whole.loss) > 1e-4  # evaluate really ran in eval mode


@pytest.mark.parametrize("in_channels", [6, 3])
def test_model_input_is_normalised_bg_and_fg_bg(in_channels: int) -> None:
    spy = Spy(tiny_model(in_channels))
    data = tiny_dataset(2)
    evaluate(spy, data, batch_size=2)
    bg = torch.stack([s["bg"] for s in data])
    fg_bg = torch.stack([s["fg_bg"] for s in data])
    images = torch.cat([bg, fg_bg], dim=1) if in_channels == 6 else fg_bg
    assert torch.allclose(spy.inputs[0], (images - 0.5) / 0.5)


def test_custom_input_fn_and_loader() -> None:
    spy = Spy(tiny_model(3))
    loader = DataLoader(tiny_dataset(4), batch_size=3)
    result = evaluate(spy, loader, batch_size=1, input_fn=lambda b: b["bg"])  # loader keeps its batch size
    assert result.n_images == 4
    assert [x.shape[0] for x in spy.inputs] == [3, 1]
    assert torch.equal(spy.inputs[0], torch.stack([s["bg"] for s in tiny_dataset(3)]))


def test_progress_and_max_batches() -> None:
    model = tiny_model()
    calls: list[tuple[int, int | None]] = []
    evaluate(model, tiny_dataset(), batch_size=2, on_progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    calls.clear()
    result = evaluate(
        model, tiny_dataset(), batch_size=2, max_batches=1, on_progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(1, 1)]
    assert result.n_images == 2


def test_mode_is_restored_when_the_model_fails() -> None:
    class Broken(WNet):
        def forward(self, x: torch.Tensor) -> WNetOutput:
            raise RuntimeError("boom")

    model = Broken(base_width=4)
    model.train()
    with pytest.raises(RuntimeError, match="boom"):
        evaluate(model, tiny_dataset(2))
    assert model.training


def test_bad_inputs_raise_errors_that_name_the_fix() -> None:
    model = tiny_model()
    with pytest.raises(DatasetError, match="empty"):
        evaluate(model, [])
    no_depth = [{k: v for k, v in s.items() if k != "depth"} for s in tiny_dataset(2)]
    with pytest.raises(DatasetError, match="depth"):
        evaluate(model, no_depth)
    with pytest.raises(InputError, match="batch_size"):
        evaluate(model, tiny_dataset(2), batch_size=0)
    with pytest.raises(InputError, match="max_batches"):
        evaluate(model, tiny_dataset(2), max_batches=0)


def test_evaluate_reports_the_depth_edge_and_rank_metrics() -> None:
    result = evaluate(tiny_model(), tiny_dataset(), batch_size=2)
    assert 0.0 <= result.metrics["depth_edge_f1"] <= 1.0
    assert -1.0 <= result.metrics["depth_spearman"] <= 1.0

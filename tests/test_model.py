"""Tests for maskdepth.model.wnet: the seed's W-Net layout, named outputs, config checks, save/load.

``SeedWNet`` below is an independent re-implementation of the seed network written from
the description in SEED.md (not from maskdepth.model.wnet): a seed checkpoint holding its
weights must load into maskdepth and give the same logits.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from support.models import save_seed_checkpoint, tiny_model
from torch import nn

import maskdepth
from maskdepth import WNet
from maskdepth.model.wnet import SEED_PARAMETERS, WNetOutput, count_parameters

# ---- the seed network, from SEED.md ---------------------------------------------------


def seed_double_conv(cin: int, cout: int, mid: int | None = None) -> nn.Module:
    """Conv3x3 (bias) -> BN -> ReLU -> Conv3x3 -> BN -> ReLU, held as ``.double_conv``."""
    mid = mid or cout
    block = nn.Module()
    block.double_conv = nn.Sequential(
        nn.Conv2d(cin, mid, 3, padding=1),
        nn.BatchNorm2d(mid),
        nn.ReLU(),
        nn.Conv2d(mid, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )
    return block


def seed_down(cin: int, cout: int) -> nn.Module:
    block = nn.Module()
    block.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), seed_double_conv(cin, cout))
    return block


def seed_up(cin: int, cout: int) -> nn.Module:
    block = nn.Module()
    block.conv = seed_double_conv(cin, cout, cin // 2)
    return block


def seed_out(cin: int, cout: int) -> nn.Module:
    block = nn.Module()
    block.conv = nn.Conv2d(cin, cout, 1)
    return block


def run_double_conv(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return block.double_conv(x)


def run_up(block: nn.Module, deep: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 (align_corners=True), zero-pad to the skip's size, cat [skip, up], DoubleConv."""
    up = F.interpolate(deep, scale_factor=2, mode="bilinear", align_corners=True)
    dy, dx = skip.shape[2] - up.shape[2], skip.shape[3] - up.shape[3]
    up = F.pad(up, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
    return run_double_conv(block.conv, torch.cat([skip, up], dim=1))


class SeedWNet(nn.Module):
    """The seed's W-Net (6 in, 1 out, stem width 32), written from SEED.md's description."""

    DEPTH_DOWNS = [(32, 32), (32, 64), (64, 128), (128, 256), (256, 256)]
    DEPTH_UPS = [(512, 128), (256, 64), (128, 32), (64, 32), (64, 32)]
    MASK_DOWNS = [(32, 64), (64, 128), (128, 256), (256, 256)]
    MASK_UPS = [(512, 128), (256, 64), (128, 32), (64, 32)]

    def __init__(self) -> None:
        super().__init__()
        self.inc = seed_double_conv(6, 32)
        for branch, downs, ups in (
            ("depth", self.DEPTH_DOWNS, self.DEPTH_UPS),
            ("mask", self.MASK_DOWNS, self.MASK_UPS),
        ):
            for k, (cin, cout) in enumerate(downs, 1):
                setattr(self, f"down{k}_{branch}", seed_down(cin, cout))
            for k, (cin, cout) in enumerate(ups, 1):
                setattr(self, f"up{k}_{branch}", seed_up(cin, cout))
            setattr(self, f"outc_{branch}", seed_out(32, 1))

    def _branch(self, branch: str, x1: torch.Tensor, levels: int) -> torch.Tensor:
        skips = [x1]
        for k in range(1, levels + 1):
            down = getattr(self, f"down{k}_{branch}").maxpool_conv
            skips.append(run_double_conv(down[1], F.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        for k in range(1, levels + 1):
            y = run_up(getattr(self, f"up{k}_{branch}"), y, skips.pop())
        return getattr(self, f"outc_{branch}").conv(y)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x1 = run_double_conv(self.inc, x)
        return self._branch("mask", x1, 4), self._branch("depth", x1, 5)


def randomise(model: nn.Module, seed: int) -> None:
    """Random weights and BatchNorm running stats, so eval-mode outputs depend on every tensor."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                tensor.fill_(7)
            elif name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=g))
            elif tensor.ndim == 4:  # conv kernels: keep activations in a sane range
                fan_in = tensor[0].numel()
                tensor.copy_(torch.randn(tensor.shape, generator=g) * (2 / fan_in) ** 0.5)
            else:
                tensor.copy_(
                    torch.randn(tensor.shape, generator=g) * 0.1 + (1.0 if name.endswith("weight") else 0.0)
                )


# ---- layout -----------------------------------------------------------------------------


def test_default_wnet_has_the_seed_parameter_count() -> None:
    assert count_parameters(WNet()) == 8_678_274 == SEED_PARAMETERS
    assert sum(p.numel() for p in SeedWNet().parameters()) == 8_678_274  # the reference agrees with SEED.md


def test_state_dict_keys_and_shapes_follow_the_seed() -> None:
    ours = WNet().state_dict()
    seed = SeedWNet().state_dict()
    assert list(ours) == list(seed)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in seed.items()}

    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    stem = {f"inc.double_conv.{i}.{p}" for i in (0, 3) for p in ("weight", "bias")}
    stem |= {f"inc.double_conv.{i}.{p}" for i in (1, 4) for p in bn}
    assert {k for k in ours if k.startswith("inc.")} == stem

    pattern = re.compile(
        r"inc\.double_conv\.[0134]\.\w+"
        r"|down[1-5]_(depth|mask)\.maxpool_conv\.1\.double_conv\.[0134]\.\w+"
        r"|up[1-5]_(depth|mask)\.conv\.double_conv\.[0134]\.\w+"
        r"|outc_(depth|mask)\.conv\.(weight|bias)"
    )
    assert [k for k in ours if not pattern.fullmatch(k)] == []
    assert {k for k in ours if k.startswith("outc_")} == {
        f"outc_{b}.conv.{p}" for b in ("depth", "mask") for p in ("weight", "bias")
    }


def test_five_depth_levels_and_four_mask_levels() -> None:
    names = {name for name, _ in WNet(base_width=4).named_children()}
    assert {n for n in names if n.startswith("down") and n.endswith("_depth")} == {
        f"down{k}_depth" for k in range(1, 6)
    }
    assert {n for n in names if n.startswith("up") and n.endswith("_depth")} == {
        f"up{k}_depth" for k in range(1, 6)
    }
    assert {n for n in names if n.startswith("down") and n.endswith("_mask")} == {
        f"down{k}_mask" for k in range(1, 5)
    }
    assert {n for n in names if n.startswith("up") and n.endswith("_mask")} == {
        f"up{k}_mask" for k in range(1, 5)
    }
    assert names - {n for n in names if n.startswith(("down", "up"))} == {"inc", "outc_depth", "outc_mask"}


def test_seed_checkpoint_loads_and_matches_the_reference_network(tmp_path: Path) -> None:
    ref = SeedWNet()
    randomise(ref, seed=1)
    path = save_seed_checkpoint(ref, tmp_path / "seed_best.pt", loss=0.4321, acc=0.0042)

    model = maskdepth.load_model(path)
    assert isinstance(model, WNet) and not model.training
    assert model.config["in_channels"] == 6 and model.config["base_width"] == 32
    ref.eval()
    # 50 x 36 pools to odd sizes (25, 9, 3) in both branches, so the pad-to-skip step is exercised.
    x = torch.randn(2, 6, 50, 36, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref_mask, ref_depth = ref(x)
        out = model(x)
    assert ref_mask.std() > 0.01 and ref_depth.std() > 0.01  # not a degenerate comparison
    torch.testing.assert_close(out.mask, ref_mask, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.depth, ref_depth, rtol=1e-4, atol=1e-5)


# ---- forward ---------------------------------------------------------------------------


@pytest.mark.parametrize(("height", "width"), [(33, 47), (65, 64), (32, 32)])
def test_forward_returns_named_outputs_at_the_input_size(height: int, width: int) -> None:
    model = tiny_model()
    with torch.no_grad():
        out = model(torch.randn(2, 6, height, width))
    assert isinstance(out, WNetOutput) and out._fields == ("mask", "depth")
    assert out.mask.shape == (2, 1, height, width)
    assert out.depth.shape == (2, 1, height, width)
    assert torch.isfinite(out.mask).all() and torch.isfinite(out.depth).all()
    assert not torch.allclose(out.mask, out.depth)  # two separate heads


def test_one_head_alone_matches_the_full_forward_and_skips_the_other_branch() -> None:
    """mask_logits / depth_logits (the predictor's cheaper forwards) give forward's numbers, and run
    only the stem and their own branch."""
    model = tiny_model().eval()
    x = torch.randn(2, 6, 64, 96)
    ran: list[str] = []
    for name, module in model.named_children():
        module.register_forward_hook(lambda *_, name=name: ran.append(name))
    with torch.no_grad():
        out = model(x)
        ran.clear()
        mask = model.mask_logits(x)
        mask_ran, ran[:] = set(ran), []
        depth = model.depth_logits(x)
    assert torch.equal(mask, out.mask) and torch.equal(depth, out.depth)
    assert "inc" in mask_ran and not any("depth" in n for n in mask_ran)
    assert "inc" in set(ran) and not any("mask" in n for n in ran)
    with pytest.raises(ValueError, match="H and W >= 32"):
        model.depth_logits(torch.randn(1, 6, 16, 64))


def test_three_channel_mode_reads_fg_bg_alone() -> None:
    model = tiny_model(in_channels=3)
    assert model.inc.double_conv[0].in_channels == 3
    with torch.no_grad():
        out = model(torch.randn(1, 3, 40, 36))
    assert out.mask.shape == out.depth.shape == (1, 1, 40, 36)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.randn(1, 6, 40, 36))


def test_out_channels_sets_both_heads() -> None:
    model = WNet(base_width=4, out_channels=2).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 6, 32, 32))
    assert out.mask.shape == out.depth.shape == (1, 2, 32, 32)


def test_backward_reaches_every_parameter() -> None:
    model = WNet(base_width=4)
    out = model(torch.randn(2, 6, 32, 32))
    (out.mask.mean() + out.depth.mean()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"in_channels": 4}, "in_channels"),
        ({"in_channels": 1}, "in_channels"),
        ({"base_width": 3}, "base_width"),
        ({"base_width": 0}, "base_width"),
        ({"out_channels": 0}, "out_channels"),
        ({"image_size": 16}, "image_size"),
    ],
)
def test_bad_config_values_raise_value_error(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        WNet(**kwargs)


@pytest.mark.parametrize(
    ("shape", "needle"),
    [
        ((1, 3, 32, 32), r"\(B, 6, H, W\).*\(1, 3, 32, 32\)"),
        ((6, 32, 32), r"\(B, 6, H, W\)"),
        ((1, 6, 16, 64), "H and W >= 32"),
    ],
)
def test_wrong_input_shape_is_a_clear_value_error(shape: tuple, needle: str) -> None:
    model = tiny_model()
    with pytest.raises(ValueError, match=needle):
        model(torch.randn(*shape))


# ---- save / load ----------------------------------------------------------------------


def test_save_pretrained_round_trip_keeps_outputs_and_config(tmp_path: Path) -> None:
    model = tiny_model(image_size=48)
    model.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "config.json").read_text()) == {
        "in_channels": 6,
        "out_channels": 1,
        "base_width": 4,
        "image_size": 48,
    }

    loaded = WNet.from_pretrained(tmp_path / "saved").eval()
    assert loaded.config == model.config
    assert loaded.image_size == 48
    x = torch.randn(2, 6, 48, 40)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    assert torch.equal(a.mask, b.mask) and torch.equal(a.depth, b.depth)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


# ---- WNetConfig: the one validation of a config ---------------------------------------------


def test_config_defaults_are_the_seed_and_old_files_still_load() -> None:
    from maskdepth.model.wnet import WNetConfig

    old = {"in_channels": 6, "out_channels": 1, "base_width": 32, "image_size": 64}  # no train_sizes
    config = WNetConfig.from_dict(old)
    assert config == WNetConfig() and config.train_sizes is None
    assert config.size_range == (64, 64)
    assert config.to_dict() == old == WNet().config  # a single-size config is written as before
    assert WNetConfig.from_dict({"base_width": 8, "note": "ignored"}).base_width == 8


def test_train_sizes_round_trip_through_config_json(tmp_path: Path) -> None:
    from maskdepth.model.wnet import WNetConfig

    model = WNet(base_width=4, image_size=64, train_sizes=(48, 96))
    assert model.config["train_sizes"] == [48, 96]
    assert WNetConfig.from_dict(json.loads(json.dumps(model.config))) == model.cfg
    model.save_pretrained(tmp_path / "m")
    loaded = maskdepth.load_model(tmp_path / "m")
    assert loaded.train_sizes == (48, 96) and loaded.cfg.size_range == (48, 96)


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"train_sizes": (96, 48)}, "train_sizes"),
        ({"train_sizes": (16, 64)}, "train_sizes"),
        ({"train_sizes": (32, 4096)}, "train_sizes"),
        ({"train_sizes": 64}, "train_sizes"),
        ({"base_width": 4096}, r"'base_width' is 4096, but must be an even integer in \[2, 128\]"),
        ({"image_size": 2048}, "image_size"),
        ({"out_channels": 65}, "out_channels"),
        ({"in_channels": True}, "in_channels"),
    ],
)
def test_config_validation_names_the_field(fields: dict, needle: str) -> None:
    from maskdepth.model.wnet import WNetConfig

    with pytest.raises(ValueError, match=needle):
        WNetConfig(**fields).validate()
    with pytest.raises(ValueError, match=needle):
        WNet(**fields)  # the constructor checks through the same rules


def test_trained_sizes_read_as_one_size_or_a_range() -> None:
    """The app says what a model was trained at: one square size, or the multi-scale range."""
    from maskdepth.model.wnet import WNetConfig

    assert WNetConfig(image_size=64).describe_sizes() == "64x64"
    assert WNetConfig(image_size=160, train_sizes=(64, 160)).describe_sizes() == "64..160 px a side"

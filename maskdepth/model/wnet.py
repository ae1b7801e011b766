"""The seed's W-Net: one shared stem, a 4-level mask U-Net and a 5-level depth U-Net.

With the default config (6 input channels = bg + fg_bg, base width 32) it has
8,678,274 parameters and the seed's state_dict key names, so a seed checkpoint loads
with ``strict=True``. Both heads return logits; the caller applies the sigmoid.

:class:`WNetConfig` is the one place a config is checked: ``WNet(...)``, ``config.json``
files, the safetensors metadata and configs inferred from a seed checkpoint's shapes all go
through :meth:`WNetConfig.validate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

SEED_PARAMETERS = 8_678_274  # parameter count of the seed's W-Net (6 in, width 32)
MIN_SIZE = 32  # five 2x poolings: smaller inputs vanish in the depth branch
# Upper bounds: a config.json (from a Hub repo, say) is built into a WNet before its weights are
# checked, so an absurd width or size must be refused first, not allocated (width 4096 = 140G parameters).
MAX_BASE_WIDTH = 128  # 4x the seed's 32: ~139M parameters, 0.55 GB in float32
MAX_IMAGE_SIZE = 1024  # predictions run at this resolution; the seed's images were 224
MAX_OUT_CHANNELS = 64


def _is_int(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


@dataclass(frozen=True)
class WNetConfig:
    """What builds a :class:`WNet`; saved as ``config.json`` next to the weights.

    Attributes:
        in_channels: 6 for ``cat([bg, fg_bg])`` (the seed), 3 for ``fg_bg`` alone.
        out_channels: channels of each head (1 in the seed).
        base_width: width of the stem; every level scales from it (32 = the seed).
        image_size: the square resolution the weights were last trained and evaluated at.
        train_sizes: ``(min, max)`` sides of the images the weights saw over all their training
            stages (multi-scale batches, maskdepth.data.multiscale, and progressive ``--resume``
            stages at other sizes); ``None`` (the default, and every config.json written before
            the field existed) means "trained at ``image_size`` only". The predictor never works
            below the smallest. Written to config.json only when set.
    """

    in_channels: int = 6
    out_channels: int = 1
    base_width: int = 32
    image_size: int = 64
    train_sizes: tuple[int, int] | None = None

    @classmethod
    def from_dict(cls, raw: object) -> WNetConfig:
        """A validated config from a parsed ``config.json``: unknown keys are ignored, missing ones
        take the defaults (old files lack ``train_sizes``). Raises ValueError naming the field."""
        if not isinstance(raw, Mapping):
            raise ValueError(
                "must be a JSON object like "
                '{"in_channels": 6, "out_channels": 1, "base_width": 32, "image_size": 64}, '
                f"got a {type(raw).__name__}"
            )
        values = {f.name: raw[f.name] for f in fields(cls) if f.name in raw}
        if isinstance(values.get("train_sizes"), list):  # JSON has no tuples
            values["train_sizes"] = tuple(values["train_sizes"])
        return cls(**values).validate()

    def validate(self) -> WNetConfig:
        """Return ``self`` if every field is usable, else raise ValueError naming the field and the fix."""
        sizes, top = self.train_sizes, MAX_IMAGE_SIZE
        rules: list[tuple[str, bool, str]] = [
            ("in_channels", _is_int(self.in_channels, 3, 6) and self.in_channels in (3, 6),
             "6 (bg + fg_bg) or 3 (fg_bg only)"),
            ("out_channels", _is_int(self.out_channels, 1, MAX_OUT_CHANNELS),
             f"an integer in [1, {MAX_OUT_CHANNELS}]"),
            ("base_width", _is_int(self.base_width, 2, MAX_BASE_WIDTH) and self.base_width % 2 == 0,
             f"an even integer in [2, {MAX_BASE_WIDTH}] (32 = the seed)"),
            ("image_size", _is_int(self.image_size, MIN_SIZE, top),
             f"an integer in [{MIN_SIZE}, {top}] (the training resolution)"),
            ("train_sizes", sizes is None or (isinstance(sizes, tuple) and len(sizes) == 2
             and all(_is_int(v, MIN_SIZE, top) for v in sizes) and sizes[0] <= sizes[1]),
             f"null or [min, max] with {MIN_SIZE} <= min <= max <= {top}"),
        ]  # fmt: skip
        for name, ok, expected in rules:
            if not ok:
                raise ValueError(f"field '{name}' is {getattr(self, name)!r}, but must be {expected}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; ``train_sizes`` only when set, so single-size configs read as before."""
        out = asdict(self)
        if self.train_sizes is None:
            del out["train_sizes"]
        else:
            out["train_sizes"] = list(self.train_sizes)
        return out

    @property
    def size_range(self) -> tuple[int, int]:
        """``(min, max)`` square sizes the weights saw in training (``image_size`` twice if single-size)."""
        return self.train_sizes or (self.image_size, self.image_size)

    def describe_sizes(self) -> str:
        """The trained sizes for people: "160x160", or "64..160 px a side" for multi-scale weights."""
        low, high = self.size_range
        return f"{high}x{high}" if low == high else f"{low}..{high} px a side"


class WNetOutput(NamedTuple):
    """Named outputs of :class:`WNet`; both are logits of shape (B, 1, H, W)."""

    mask: torch.Tensor
    depth: torch.Tensor


class DoubleConv(nn.Module):
    """(Conv3x3 -> BatchNorm -> ReLU) x 2."""

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int | None = None):
        super().__init__()
        mid_channels = mid_channels or out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


class Down(nn.Module):
    """MaxPool2d(2) then DoubleConv: halves H and W."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool_conv(x)


class Up(nn.Module):
    """Bilinear x2 upsampling of the deeper map, pad to the skip's size, concat, DoubleConv."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.conv = DoubleConv(in_channels, out_channels, in_channels // 2)

    def forward(self, deep: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        deep = self.up(deep)
        # Odd input sizes lose a row/column in MaxPool2d; pad back so the concat lines up.
        dy = skip.shape[-2] - deep.shape[-2]
        dx = skip.shape[-1] - deep.shape[-1]
        if dy or dx:
            deep = F.pad(deep, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, deep], dim=1))


class OutConv(nn.Module):
    """1x1 convolution to the output channels (logits)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class WNet(nn.Module):
    """Mask + depth from a background and the same background with an object pasted in.

    Args: the fields of :class:`WNetConfig` (``image_size`` and ``train_sizes`` are metadata:
    forward accepts any H, W >= 32). Invalid values raise ValueError.

    Input (B, in_channels, H, W) with H, W >= 32; output :class:`WNetOutput` of logits.

    The architecture alone: ``maskdepth.WNet`` (:mod:`maskdepth.hub.pretrained`) is this class with
    the Hub's ``from_pretrained`` / ``save_pretrained`` / ``push_to_hub``.
    """

    def __init__(
        self,
        in_channels: int = 6,
        out_channels: int = 1,
        base_width: int = 32,
        image_size: int = 64,
        train_sizes: tuple[int, int] | None = None,
    ):
        super().__init__()
        sizes = tuple(train_sizes) if isinstance(train_sizes, (list, tuple)) else train_sizes
        self.cfg = WNetConfig(in_channels, out_channels, base_width, image_size, sizes).validate()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.base_width = base_width
        self.image_size = image_size
        self.train_sizes = self.cfg.train_sizes
        w = base_width

        self.inc = DoubleConv(in_channels, w)  # shared stem -> x1

        # Depth branch: 5 levels.
        self.down1_depth = Down(w, w)
        self.down2_depth = Down(w, 2 * w)
        self.down3_depth = Down(2 * w, 4 * w)
        self.down4_depth = Down(4 * w, 8 * w)
        self.down5_depth = Down(8 * w, 8 * w)
        self.up1_depth = Up(16 * w, 4 * w)
        self.up2_depth = Up(8 * w, 2 * w)
        self.up3_depth = Up(4 * w, w)
        self.up4_depth = Up(2 * w, w)
        self.up5_depth = Up(2 * w, w)
        self.outc_depth = OutConv(w, out_channels)

        # Mask branch: 4 levels.
        self.down1_mask = Down(w, 2 * w)
        self.down2_mask = Down(2 * w, 4 * w)
        self.down3_mask = Down(4 * w, 8 * w)
        self.down4_mask = Down(8 * w, 8 * w)
        self.up1_mask = Up(16 * w, 4 * w)
        self.up2_mask = Up(8 * w, 2 * w)
        self.up3_mask = Up(4 * w, w)
        self.up4_mask = Up(2 * w, w)
        self.outc_mask = OutConv(w, out_channels)

    @classmethod
    def from_config(cls, config: WNetConfig) -> WNet:
        """An untrained W-Net of ``config`` (validated)."""
        return cls(**config.validate().to_dict())

    def set_sizes(self, image_size: int, train_sizes: tuple[int, int] | None) -> None:
        """Record the size trained (and evaluated) at and the range of sizes seen; saved with the weights.

        A range equal to ``(image_size, image_size)`` is stored as None (single-size, as before)."""
        sizes = (
            None
            if train_sizes is None or tuple(train_sizes) == (image_size, image_size)
            else tuple(train_sizes)
        )
        self.cfg = replace(self.cfg, image_size=image_size, train_sizes=sizes).validate()
        self.image_size, self.train_sizes = image_size, sizes

    @property
    def config(self) -> dict:
        """The constructor arguments (``WNetConfig.to_dict``); saved as config.json next to the weights."""
        return self.cfg.to_dict()

    def forward(self, x: torch.Tensor) -> WNetOutput:
        x1 = self.inc(self._checked(x))
        return WNetOutput(mask=self._mask(x1), depth=self._depth(x1))

    def _checked(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"WNet expects input of shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        if min(x.shape[-2:]) < MIN_SIZE:
            raise ValueError(
                f"WNet needs H and W >= {MIN_SIZE} (five 2x poolings), got {tuple(x.shape[-2:])}"
            )
        return x

    def mask_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The mask logits alone, as ``forward(x).mask`` (the depth branch is not run)."""
        return self._mask(self.inc(self._checked(x)))

    def depth_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The depth logits alone, as ``forward(x).depth`` (the mask branch is not run)."""
        return self._depth(self.inc(self._checked(x)))

    def _depth(self, x1: torch.Tensor) -> torch.Tensor:
        d2 = self.down1_depth(x1)
        d3 = self.down2_depth(d2)
        d4 = self.down3_depth(d3)
        d5 = self.down4_depth(d4)
        d6 = self.down5_depth(d5)
        d = self.up1_depth(d6, d5)
        d = self.up2_depth(d, d4)
        d = self.up3_depth(d, d3)
        d = self.up4_depth(d, d2)
        d = self.up5_depth(d, x1)
        return self.outc_depth(d)

    def _mask(self, x1: torch.Tensor) -> torch.Tensor:
        m2 = self.down1_mask(x1)
        m3 = self.down2_mask(m2)
        m4 = self.down3_mask(m3)
        m5 = self.down4_mask(m4)
        m = self.up1_mask(m5, m4)
        m = self.up2_mask(m, m3)
        m = self.up3_mask(m, m2)
        m = self.up4_mask(m, x1)
        return self.outc_mask(m)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

"""The seed's W-Net: one shared stem, a 4-level mask U-Net and a 5-level depth U-Net.

With the default config (6 input channels = bg + fg_bg, base width 32) it has
8,678,274 parameters and the seed's state_dict key names, so a seed checkpoint loads
with ``strict=True``. Both heads return logits; the caller applies the sigmoid.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

SEED_PARAMETERS = 8_678_274  # parameter count of the seed's W-Net (6 in, width 32)


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


class WNet(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="maskdepth",
    tags=["depth-estimation", "image-segmentation", "maskdepth"],
    repo_url="https://github.com/maskdepth/maskdepth",
    license="mit",
):
    """Mask + depth from a background and the same background with an object pasted in.

    Args:
        in_channels: 6 for ``cat([bg, fg_bg])`` (the seed), 3 for ``fg_bg`` alone.
        out_channels: channels of each head (1 in the seed).
        base_width: width of the stem; every level scales from it (32 = the seed).
        image_size: the square resolution the weights were trained at; the predictor
            resizes inputs to it. Metadata only: forward accepts any H, W >= 32.

    Input (B, in_channels, H, W) with H, W >= 32; output :class:`WNetOutput` of logits.
    """

    def __init__(
        self, in_channels: int = 6, out_channels: int = 1, base_width: int = 32, image_size: int = 64
    ):
        super().__init__()
        if in_channels not in (3, 6):
            raise ValueError(f"in_channels must be 6 (bg + fg_bg) or 3 (fg_bg only), got {in_channels}")
        if base_width < 2 or base_width % 2:
            raise ValueError(f"base_width must be an even number >= 2, got {base_width}")
        if out_channels < 1:
            raise ValueError(f"out_channels must be >= 1, got {out_channels}")
        if image_size < 32:
            raise ValueError(f"image_size must be >= 32, got {image_size}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.base_width = base_width
        self.image_size = image_size
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

    @property
    def config(self) -> dict:
        """The constructor arguments; saved as config.json next to the weights."""
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "base_width": self.base_width,
            "image_size": self.image_size,
        }

    def forward(self, x: torch.Tensor) -> WNetOutput:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"WNet expects input of shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        if min(x.shape[-2:]) < 32:
            raise ValueError(f"WNet needs H and W >= 32 (five 2x poolings), got {tuple(x.shape[-2:])}")
        x1 = self.inc(x)

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
        depth = self.outc_depth(d)

        m2 = self.down1_mask(x1)
        m3 = self.down2_mask(m2)
        m4 = self.down3_mask(m3)
        m5 = self.down4_mask(m4)
        m = self.up1_mask(m5, m4)
        m = self.up2_mask(m, m3)
        m = self.up3_mask(m, m2)
        m = self.up4_mask(m, x1)
        mask = self.outc_mask(m)
        return WNetOutput(mask=mask, depth=depth)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

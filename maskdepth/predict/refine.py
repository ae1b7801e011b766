"""From the model's working resolution back to the photo's: the size policy and guided upsampling.

The W-Net runs on a small copy of the photo (its *working size*); users want a mask and a
depth map at the photo's own size whose edges sit on the object's real edges. Two pieces:

- :func:`working_size` picks the working size: the photo's aspect ratio kept, its long side
  brought to the requested resolution, never enlarged past what the model needs; then
  :func:`pad_to_multiple` pads it to what five 2x poolings need (a multiple of 32), and the
  padding is cropped off the outputs.
- :func:`guided_upsample` is the *fast guided filter* (He & Sun, 2015, "Fast Guided Filter"):
  a local linear model ``q = a * I + b`` of the low-resolution prediction ``p`` in terms of a
  guide image ``I`` is fitted at the working size, and ``a``, ``b`` (smooth by construction)
  are upsampled bilinearly and applied to the guide at full size. Edges of the output follow
  the guide's edges; the cost at full size is one interpolation and one multiply-add per map.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageChops

NETWORK_MULTIPLE = 32  # the W-Net pools five times: sides that are multiples of 2^5 need no odd-size fix-ups
GUIDE_RADIUS = 2  # window radius in working-size pixels (a 5x5 window)
MASK_EPS = 1e-3  # regularisation on the guide's variance: smaller = follows the guide's edges more closely
DEPTH_EPS = 1e-2
DIFF_GAIN = (
    2.0  # |fg_bg - bg| of 128/255 counts as a full-strength guide edge (2 and 4 measured: 2 is better)
)


def working_size(width: int, height: int, long_side: int, min_long_side: int) -> tuple[int, int]:
    """(w, h) the model runs at for a ``width`` x ``height`` photo.

    The aspect ratio is kept. The long side becomes ``long_side``, except that a photo smaller
    than that is not enlarged, unless it is smaller than ``min_long_side`` (the smallest size
    the model was trained at): then it is enlarged to that, and no further.
    """
    longest = max(width, height)
    target = min(long_side, longest) if longest >= min_long_side else min_long_side
    scale = target / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def pad_to_multiple(
    x: torch.Tensor, multiple: int = NETWORK_MULTIPLE
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (B, C, h, w) on the right and bottom by edge replication up to sides that are multiples.

    Returns the padded tensor and the original (h, w) to crop back to. Replication (not zeros)
    keeps the background and the composite equal in the padding, so the model sees no change there.
    """
    h, w = x.shape[-2:]
    ph, pw = math.ceil(h / multiple) * multiple - h, math.ceil(w / multiple) * multiple - w
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, (B, 1, h, w) -> same; windows are cut at the border, not zero-padded."""
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


def guided_upsample(
    p: torch.Tensor, guide_low: torch.Tensor, guide_full: torch.Tensor, *, eps: float, r: int = GUIDE_RADIUS
) -> torch.Tensor:
    """Fast guided filter: ``p`` (1, 1, h, w) at the working size -> (1, 1, H, W) following ``guide_full``'s edges.

    ``guide_low`` is ``guide_full`` (1, 1, H, W) resized to (h, w). All values in [0, 1].
    """
    mean_i, mean_p = _box(guide_low, r), _box(p, r)
    cov_ip = _box(guide_low * p, r) - mean_i * mean_p
    var_i = _box(guide_low * guide_low, r) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    ab = _box(torch.cat([a, b], dim=1), r)
    ab = F.interpolate(ab, size=guide_full.shape[-2:], mode="bilinear", align_corners=False)
    return torch.addcmul(ab[:, 1:2], ab[:, 0:1], guide_full).clamp_(0, 1)


def _gray(img: Image.Image) -> torch.Tensor:
    """(1, 1, H, W) float32 in [0, 1] from an 8-bit PIL image (grey conversion done by PIL, in C)."""
    arr = np.asarray(img if img.mode == "L" else img.convert("L"))
    return torch.from_numpy(arr.copy()).to(torch.float32).div_(255.0)[None, None]


def change_guide(fg_bg: Image.Image, bg: Image.Image | None) -> Image.Image:
    """An 8-bit guide whose edges are the pasted object's outline: ``DIFF_GAIN`` x |fg_bg - bg|, grey.

    Without a background (3-channel models) the composite's own brightness is the guide. The two may
    be grey images (a registered pair: the predictor warps only the background's grey levels at full size).
    """
    if bg is None:
        return fg_bg.convert("L")
    diff = ImageChops.difference(fg_bg, bg).convert("L")  # per-pixel |a - b| in C, then luma
    return diff.point(lambda v: min(255, int(v * DIFF_GAIN)))


def refine(
    mask: torch.Tensor, depth: torch.Tensor, fg_bg: Image.Image, bg: Image.Image | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask and depth (1, 1, h, w) at the working size -> (H, W) at ``fg_bg``'s size, edges from the photos.

    The mask follows the outline of what changed between ``bg`` and ``fg_bg`` (the composite's brightness
    without a background); the depth follows the refined mask, since the object's outline is where it jumps.
    Works on the device the predictions are on.
    """
    small = mask.shape[-1], mask.shape[-2]
    guide = change_guide(fg_bg, bg)
    mask_full = guided_upsample(
        mask,
        _gray(guide.resize(small, Image.BILINEAR, reducing_gap=2.0)).to(mask.device),
        _gray(guide).to(mask.device),
        eps=MASK_EPS,
        r=GUIDE_RADIUS,
    )
    del guide
    # Depth jumps at the object's outline: the refined mask guides the depth (a guide with the photo's
    # brightness would copy its texture into the depth map).
    depth_full = guided_upsample(
        depth,
        F.interpolate(mask_full, size=mask.shape[-2:], mode="area"),
        mask_full,
        eps=DEPTH_EPS,
        r=GUIDE_RADIUS,
    )
    return mask_full[0, 0], depth_full[0, 0]

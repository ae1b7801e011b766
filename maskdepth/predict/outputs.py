"""What a prediction becomes for people: PNG files, the depth colour map, the mask overlay."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from maskdepth.errors import InputError
from maskdepth.imageio import save_png_rgb, save_png_u8, save_png_u16

if TYPE_CHECKING:
    from maskdepth.predict.predictor import Prediction

OUTPUT_FILES = {
    "mask.png": "mask probability, 8-bit grey (255 = object)",
    "depth.png": "depth, 8-bit grey (near = white, far = black)",
    "depth16.png": "depth, 16-bit grey (0..65535 = far..near, inverse depth, see DEPTH_CONVENTION)",
    "depth_color.png": "depth in the turbo colour map (red = near, blue = far)",
}


def colorize_depth(depth: np.ndarray) -> np.ndarray:
    """(H, W) depth in [0, 1] -> (H, W, 3) uint8 in the turbo colour map (near = red, far = blue).

    Uses the published polynomial fit of Google's turbo map, so no plotting library is needed.
    """
    x = np.clip(depth.astype(np.float32), 0, 1)[..., None]
    coeffs = np.array(
        [
            [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
            [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
            [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
        ],
        np.float32,
    )
    rgb = np.zeros(x.shape[:-1] + (3,), np.float32)
    for power in range(5, -1, -1):  # Horner's rule, all three channels at once
        rgb = rgb * x + coeffs[:, power]
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def mask_overlay(
    image: Image.Image, mask: np.ndarray, colour=(255, 40, 80), alpha: float = 0.55
) -> np.ndarray:
    """Tint the image where the mask is on: (H, W, 3) uint8."""
    img = np.asarray(image.convert("RGB"), np.float32)
    a = (np.clip(mask, 0, 1) * alpha)[..., None]
    return (img * (1 - a) + np.array(colour, np.float32) * a).round().astype(np.uint8)


def save_prediction(pred: Prediction, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write mask.png, depth.png, depth16.png and depth_color.png (see OUTPUT_FILES) into ``out_dir``."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        return {
            "mask.png": save_png_u8(pred.mask, out / "mask.png"),
            "depth.png": save_png_u8(pred.depth, out / "depth.png"),
            "depth16.png": save_png_u16(pred.depth, out / "depth16.png"),
            "depth_color.png": save_png_rgb(colorize_depth(pred.depth), out / "depth_color.png"),
        }
    except OSError as e:  # a file in the way, no permission, disk full: the writers leave no partial file
        raise InputError(
            f"cannot write the outputs into {out} ({e.strerror or e}): choose another output folder "
            "(or free some disk space)"
        ) from e

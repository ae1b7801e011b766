"""Predictor: images in, mask and depth out, at the input image's size.

Pre-processing (decode, RGB, resize to the model's training resolution, normalise) and
post-processing (sigmoid, resize back, PNG encodings, colour map) live here and nowhere
else; the CLI and the app both call :class:`Predictor`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from maskdepth.data.transforms import model_input
from maskdepth.errors import InputError
from maskdepth.imageio import ImageSource, open_image, save_png_rgb, save_png_u8, save_png_u16
from maskdepth.model import WNet

OUTPUT_FILES = {
    "mask.png": "mask probability, 8-bit grey (255 = object)",
    "depth.png": "depth, 8-bit grey (near = white, far = black)",
    "depth16.png": "depth, 16-bit grey (0..65535 = far..near, inverse depth, see DEPTH_CONVENTION)",
    "depth_color.png": "depth in the turbo colour map (red = near, blue = far)",
}


@dataclass
class Prediction:
    """Model outputs at the input image's size."""

    mask: np.ndarray  # (H, W) float32 probability in [0, 1]
    depth: np.ndarray  # (H, W) float32 in [0, 1], near = 1, far = 0
    image: Image.Image  # the composite (fg_bg) as read, RGB
    notes: list[str] = field(default_factory=list)  # what was adjusted on the way (shown to users)


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


class Predictor:
    """Runs a W-Net on a (bg, fg_bg) pair or on fg_bg alone for a 3-channel model."""

    def __init__(self, model: WNet, device: str | torch.device = "cpu"):
        self.model = model.to(device).eval()
        self.device = torch.device(device)

    @classmethod
    def from_source(cls, source: str | os.PathLike, device: str = "cpu", **kwargs) -> Predictor:
        """Load any model source ``maskdepth.load_model`` accepts."""
        from maskdepth.hub import load_model

        return cls(load_model(source, device=device, **kwargs), device=device)

    @property
    def needs_background(self) -> bool:
        return self.model.in_channels == 6

    def _to_tensor(self, img: Image.Image) -> torch.Tensor:
        size = self.model.image_size
        arr = np.asarray(img.resize((size, size), Image.BILINEAR, reducing_gap=3.0), np.float32) / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1)

    def prepare(
        self, image: ImageSource, bg: ImageSource | None = None
    ) -> tuple[Image.Image, Image.Image | None, list[str]]:
        """Decode and check a pair; a background of another size is resized to the composite's, with a note."""
        notes: list[str] = []
        fg_bg = open_image(image, name="composite image (fg_bg)")
        background = None
        if bg is not None and self.needs_background:
            background = open_image(bg, name="background image (bg)")
            if background.size != fg_bg.size:
                notes.append(
                    f"the background is {background.size[0]}x{background.size[1]} but the composite is "
                    f"{fg_bg.size[0]}x{fg_bg.size[1]}: the background was resized to match; for best results "
                    "use the same photo before and after pasting"
                )
                background = background.resize(fg_bg.size, Image.BILINEAR)
        elif self.needs_background:
            raise InputError(
                "this model needs two images: the background (bg) and the same photo with the object pasted "
                "in (fg_bg); add the background, or pick a 3-channel model"
            )
        elif bg is not None:
            notes.append("this model reads the composite alone (3 channels); the background was not used")
        return fg_bg, background, notes

    @torch.inference_mode()
    def predict(self, image: ImageSource, bg: ImageSource | None = None) -> Prediction:
        """Mask and depth for one composite ``image`` (and its background ``bg``), at the image's size."""
        fg_bg, background, notes = self.prepare(image, bg)
        return self._run([(fg_bg, background, notes)])[0]

    @torch.inference_mode()
    def predict_many(
        self, pairs: list[tuple[ImageSource, ImageSource | None]], batch_size: int = 16
    ) -> list[Prediction]:
        """Batched :meth:`predict` over (image, bg) pairs."""
        prepared = [self.prepare(image, bg) for image, bg in pairs]
        out: list[Prediction] = []
        for i in range(0, len(prepared), batch_size):
            out.extend(self._run(prepared[i : i + batch_size]))
        return out

    def _run(self, prepared: list[tuple[Image.Image, Image.Image | None, list[str]]]) -> list[Prediction]:
        fg = torch.stack([self._to_tensor(p[0]) for p in prepared]).to(self.device)
        bg = (
            torch.stack([self._to_tensor(p[1]) for p in prepared]).to(self.device)
            if self.needs_background
            else None
        )
        out = self.model(model_input(bg, fg, self.model.in_channels))
        mask, depth = torch.sigmoid(out.mask.float()), torch.sigmoid(out.depth.float())
        results = []
        for i, (fg_bg, _, notes) in enumerate(prepared):
            w, h = fg_bg.size
            # Back to the input's size: bilinear on probabilities keeps edges smooth.
            m = F.interpolate(mask[i : i + 1], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
            d = F.interpolate(depth[i : i + 1], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
            results.append(
                Prediction(
                    mask=m.clamp(0, 1).cpu().numpy(),
                    depth=d.clamp(0, 1).cpu().numpy(),
                    image=fg_bg,
                    notes=notes,
                )
            )
        return results


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

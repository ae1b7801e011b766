"""Predictor: images in, mask and depth out, at the input image's size.

Pre-processing (decode, RGB, resize to a working size that keeps the aspect ratio, pad,
normalise) and post-processing (sigmoid, crop, guided upsampling to the photo's size, PNG
encodings, colour map) live here and in :mod:`maskdepth.predict.refine`, nowhere else; the CLI and
the app both call :class:`Predictor`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from maskdepth.align import Alignment
from maskdepth.align.register import register
from maskdepth.data.transforms import model_input
from maskdepth.errors import InputError
from maskdepth.imageio import ImageSource, open_image
from maskdepth.model.wnet import WNet
from maskdepth.predict.refine import pad_to_multiple, refine, working_size
from maskdepth.predict.views import (
    DEPTH_VIEW,
    MAX_RESOLUTION,
    depth_from_views,
    parse_depth_view,
    view_sizes,
)


@dataclass
class Prediction:
    """Model outputs at the input image's size."""

    mask: np.ndarray  # (H, W) float32 probability in [0, 1]
    depth: np.ndarray  # (H, W) float32 in [0, 1], near = 1, far = 0
    image: Image.Image  # the composite (fg_bg) as read, RGB
    notes: list[str] = field(default_factory=list)  # what was adjusted on the way (shown to users)
    working_size: tuple[int, int] | None = None  # (w, h) the model ran at, before padding to a multiple of 32
    depth_size: tuple[int, int] | None = None  # (w, h) of the (largest) whole-scene view the depth came from
    depth_views: int = 1  # how many views (mirror images counted) the depth was taken from
    alignment: Alignment | None = None  # how the background was registered onto the composite (None: not)
    background: Image.Image | None = None  # what the model compared (aligned: at 2x its working size)
    uncovered: np.ndarray | None = None  # (H, W) bool: composite pixels the background shot does not show


def depth_source(pred: Prediction) -> str:
    """Where a prediction's depth came from, in words ("" when from the working forward itself)."""
    if pred.depth_size is None or (pred.depth_views == 1 and pred.depth_size == pred.working_size):
        return ""
    w, h = pred.depth_size
    if pred.depth_views == 1:
        return f"the depth from a whole-scene view at {w}x{h}"
    return f"the depth from {pred.depth_views} whole-scene views up to {w}x{h}, mirror images included"


RESOLUTIONS = {"fast": 128, "balanced": 256, "detailed": 512}  # long side of the working size, pixels
DEFAULT_RESOLUTION = (
    "balanced"  # the measured quality/speed point: BENCHMARKS.md, "Prediction at the photo's resolution"
)


def resolution_pixels(resolution: int | str | None) -> int:
    """A working resolution as the long side in pixels: a preset name (RESOLUTIONS), a number, or None."""
    value = DEFAULT_RESOLUTION if resolution is None else resolution
    if isinstance(value, str):
        key = value.strip().lower()
        if key in RESOLUTIONS:
            return RESOLUTIONS[key]
        if not key.isdigit():
            raise InputError(
                f"unknown resolution {value!r}: use one of {', '.join(RESOLUTIONS)} or a number of pixels "
                f"(the long side the model runs at, 32..{MAX_RESOLUTION})"
            )
        value = int(key)
    if not 32 <= int(value) <= MAX_RESOLUTION:
        raise InputError(f"resolution must be 32..{MAX_RESOLUTION} pixels (the long side), got {value}")
    return int(value)


class Prepared(NamedTuple):
    """A decoded pair on the composite's grid: what the model and the refinement see."""

    fg_bg: Image.Image
    bg: Image.Image | None  # aligned onto fg_bg's grid (None for 3-channel models)
    notes: list[str]
    alignment: Alignment | None = None
    uncovered: np.ndarray | None = None  # (H, W) bool, None when the background covers everything
    guide: tuple[Image.Image, Image.Image] | None = None  # registered: both in grey, for refine


class Predictor:
    """Runs a W-Net on a (bg, fg_bg) pair or on fg_bg alone for a 3-channel model.

    The photo is brought to a working size (aspect ratio kept, long side ``resolution``, see
    :mod:`maskdepth.predict.refine`), run through the model, and the outputs are refined back to the
    photo's own size with a guided filter (``refine=False``: plain bilinear upsampling).
    """

    def __init__(
        self,
        model: WNet,
        device: str | torch.device = "cpu",
        resolution: int | str | None = None,
        refine: bool = True,
        depth_view: int | str | None = DEPTH_VIEW,
        align: bool = True,
    ):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.resolution = resolution_pixels(resolution)
        self.refine = refine
        self.align = align  # register the background onto the composite first (maskdepth.align)
        self.depth_view = depth_view  # checked by the setter

    @property
    def depth_view(self) -> int | str | None:
        """Where the depth comes from (DEPTH_VIEW); set from code or the command line (parse_depth_view)."""
        return self._depth_view

    @depth_view.setter
    def depth_view(self, value: int | str | None) -> None:
        self._depth_view = parse_depth_view(value)

    @classmethod
    def from_source(
        cls, source: str | os.PathLike, device: str = "cpu", resolution: int | str | None = None, **kwargs
    ) -> Predictor:
        """Load any model source ``maskdepth.load_model`` accepts."""
        from maskdepth.hub.transfer import load_model

        return cls(load_model(source, device=device, **kwargs), device=device, resolution=resolution)

    @property
    def needs_background(self) -> bool:
        return self.model.in_channels == 6

    def working_size(self, width: int, height: int, resolution: int | str | None = None) -> tuple[int, int]:
        """(w, h) the model runs at for a photo of this size (before padding to a multiple of 32)."""
        long_side = self.resolution if resolution is None else resolution_pixels(resolution)
        # Never below the smallest size the model was trained at (config train_sizes, else image_size).
        return working_size(width, height, long_side, self.model.cfg.size_range[0])

    def prepare(
        self,
        image: ImageSource,
        bg: ImageSource | None = None,
        resolution: int | str | None = None,
        align: bool | None = None,
    ) -> Prepared:
        """Decode and check a pair, and bring the background onto the composite's grid.

        With ``align`` (default: the predictor's) the background is registered onto the composite
        (:func:`maskdepth.align.register`; an exact paste is left as it is, two different scenes raise
        ``AlignmentError``); without, a background of another size is resized, with a note.
        """
        notes: list[str] = []
        fg_bg = open_image(image, name="composite image (fg_bg)")
        if bg is None or not self.needs_background:
            if self.needs_background:
                raise InputError(
                    "this model needs two images: the background (bg) and the same photo with the object "
                    "pasted in (fg_bg); add the background, or pick a 3-channel model"
                )
            if bg is not None:
                notes.append("this model reads the composite alone (3 channels); the background was not used")
            return Prepared(fg_bg, None, notes)
        background = open_image(bg, name="background image (bg)")
        if self.align if align is None else align:
            side = 2 * (self.resolution if resolution is None else resolution_pixels(resolution))
            return self._aligned(fg_bg, background, notes, side)
        if background.size != fg_bg.size:
            notes.append(
                f"the background is {background.size[0]}x{background.size[1]} but the composite is "
                f"{fg_bg.size[0]}x{fg_bg.size[1]}: the background was resized to match; for best results "
                "use the same photo before and after pasting"
            )
            background = background.resize(fg_bg.size, Image.BILINEAR)
        return Prepared(fg_bg, background, notes)

    @staticmethod
    def _aligned(fg_bg: Image.Image, background: Image.Image, notes: list[str], side: int) -> Prepared:
        """The pair registered, warping only what is needed: the background in colour onto a grid of long
        side ``side`` (the model's input) and in grey onto the full grid (the refinement's outline)."""
        fg, bg = np.asarray(fg_bg), np.asarray(background)
        fit = register(bg, fg)
        if background.size != fg_bg.size:
            notes.append(
                f"the background is {background.size[0]}x{background.size[1]} but the composite is "
                f"{fg_bg.size[0]}x{fg_bg.size[1]}: the background was resized and registered onto it"
            )
        if fit.identity:
            return Prepared(fg_bg, background, notes, fit)
        w, h = fg_bg.size
        scale = min(1.0, side / max(w, h))
        small = (max(1, round(w * scale)), max(1, round(h * scale)))
        fill = fg if scale == 1 else np.asarray(fg_bg.resize(small, Image.BILINEAR, reducing_gap=3.0))
        aligned, _ = fit.warp(bg, size=small[::-1], fill=fill)
        grey = fg_bg.convert("L")
        guide, covered = fit.warp_guide(bg, np.asarray(grey))
        uncovered = None if covered.all() else ~covered
        if uncovered is not None:
            notes.append(
                f"the background shot does not show {uncovered.mean():.0%} of the composite (at its edges): "
                "no object is reported there"
            )
        aligned_image = Image.fromarray((aligned * 255 + 0.5).astype(np.uint8))
        return Prepared(fg_bg, aligned_image, notes, fit, uncovered, (grey, Image.fromarray(guide)))

    @torch.inference_mode()
    def predict(
        self,
        image: ImageSource,
        bg: ImageSource | None = None,
        resolution: int | str | None = None,
        align: bool | None = None,
    ) -> Prediction:
        """Mask and depth for one composite ``image`` (and its background ``bg``), at the image's size.

        ``resolution`` and ``align`` override the predictor's own for this call only (a cached predictor
        serves concurrent requests with their own settings)."""
        return self._run([self.prepare(image, bg, resolution, align)], resolution)[0]

    @torch.inference_mode()
    def predict_many(
        self,
        pairs: list[tuple[ImageSource, ImageSource | None]],
        batch_size: int = 16,
        resolution: int | str | None = None,
    ) -> list[Prediction]:
        """Batched :meth:`predict` over (image, bg) pairs: pairs with the same working size share a batch."""
        prepared = [self.prepare(image, bg, resolution) for image, bg in pairs]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, pair in enumerate(prepared):
            groups.setdefault(self.working_size(*pair.fg_bg.size, resolution), []).append(i)
        out: list[Prediction | None] = [None] * len(prepared)
        for indices in groups.values():
            for k in range(0, len(indices), batch_size):
                chunk = indices[k : k + batch_size]
                for i, pred in zip(chunk, self._run([prepared[i] for i in chunk], resolution), strict=True):
                    out[i] = pred
        return out  # type: ignore[return-value]

    def _to_tensor(self, img: Image.Image, size: tuple[int, int]) -> torch.Tensor:
        """(3, h, w) float32 in [0, 1] at ``size`` = (w, h); PIL's reducing_gap makes big downscales cheap."""
        small = img if img.size == size else img.resize(size, Image.BILINEAR, reducing_gap=3.0)
        # contiguous: a permuted (channels-last) input makes the NCHW convolutions 4-6x slower on CPU
        return torch.from_numpy(np.asarray(small, np.float32) / 255.0).permute(2, 0, 1).contiguous()

    def _run(self, prepared: list[Prepared], resolution: int | str | None = None) -> list[Prediction]:
        """One batch of pairs that share a working size -> predictions at each photo's own size."""
        size = self.working_size(*prepared[0][0].size, resolution)
        bg, fg = self._inputs(prepared, size)
        sizes = self.depth_sizes(size)
        from_views = sizes != [size] or self.depth_view == "ensemble"  # whole-scene views at known scales
        # The working forward runs the depth branch only when its depth is used (one of the views).
        mask, depth = self._forward(bg, fg, depth=not from_views or size in sizes)
        if from_views:
            mirrored = self.depth_view == "ensemble"
            depth = depth_from_views(self._view_depth, bg, fg, sizes, depth, mirrored)
        results = []
        for i, pair in enumerate(prepared):
            fg, bg = pair.guide or (pair.fg_bg, pair.bg)  # what the refinement compares, at full size
            m, d = self._to_full_size(mask[i : i + 1], depth[i : i + 1], fg, bg)
            m = m.cpu().numpy()
            if pair.uncovered is not None:  # nothing there to compare with: never the object
                m[pair.uncovered] = 0.0
            results.append(
                Prediction(
                    mask=m,
                    depth=d.cpu().numpy(),
                    image=pair.fg_bg,
                    notes=pair.notes,
                    working_size=size,
                    depth_size=sizes[-1],
                    depth_views=len(sizes) * (2 if self.depth_view == "ensemble" else 1),
                    alignment=pair.alignment,
                    background=pair.bg,
                    uncovered=pair.uncovered,
                )
            )
        return results

    def depth_sizes(self, size: tuple[int, int]) -> list[tuple[int, int]]:
        """(w, h) of each whole-scene view the depth of a ``size`` working forward is taken from
        (:func:`maskdepth.predict.views.view_sizes`; ``[size]``: the working forward's own depth)."""
        return view_sizes(size, self.model.cfg.size_range, self.depth_view)

    def _inputs(
        self, prepared: list[Prepared], size: tuple[int, int]
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The pairs as (bg, fg_bg) batches (B, 3, h, w) at ``size`` = (w, h); bg None for 3-channel models."""
        fg = torch.stack([self._to_tensor(p[0], size) for p in prepared]).to(self.device)
        if not self.needs_background:
            return None, fg
        return torch.stack([self._to_tensor(p[1], size) for p in prepared]).to(self.device), fg

    def _forward(
        self, bg: torch.Tensor | None, fg: torch.Tensor, mask: bool = True, depth: bool = True
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Mask and depth probabilities (B, 1, h, w) of (bg, fg_bg) batches at their own size; a branch
        not asked for is not run (its output is None)."""
        x, (h, w) = pad_to_multiple(model_input(bg, fg, self.model.in_channels))
        if mask and depth:
            out = self.model(x)
            logits = (out.mask, out.depth)
        else:
            logits = (
                self.model.mask_logits(x) if mask else None,
                self.model.depth_logits(x) if depth else None,
            )
        return tuple(None if t is None else torch.sigmoid(t.float()[..., :h, :w]) for t in logits)

    def _view_depth(self, bg: torch.Tensor | None, fg: torch.Tensor) -> torch.Tensor:
        """Depth probabilities of a whole-scene view, the depth branch alone."""
        return self._forward(bg, fg, mask=False)[1]

    def _to_full_size(
        self, mask: torch.Tensor, depth: torch.Tensor, fg_bg: Image.Image, bg: Image.Image | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, 1, h, w) probabilities at the working size -> (H, W) at the photo's size."""
        w, h = fg_bg.size
        if (h, w) == tuple(mask.shape[-2:]):
            return mask[0, 0].clamp(0, 1), depth[0, 0].clamp(0, 1)
        if self.refine:
            return refine(mask, depth, fg_bg, bg)  # bg is None for 3-channel models (prepare)
        # Plain bilinear upsampling of the probabilities (refine=False): smooth, but edges are blurred.
        both = F.interpolate(torch.cat([mask, depth], 1), size=(h, w), mode="bilinear", align_corners=False)
        return both[0, 0].clamp(0, 1), both[0, 1].clamp(0, 1)

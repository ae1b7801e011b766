"""Depth teachers for ``make-dataset`` (:mod:`maskdepth.data.make_dataset`): where a made sample's depth comes from.

Three kinds, chosen by :func:`open_teacher` from the ``--depth`` text:

- ``none``: no depth (a masks-only dataset).
- a W-Net (``shipped``, a model folder, a weights file, or ``wnet:owner/name`` on the Hub): its depth
  from :class:`~maskdepth.predict.Predictor` on (bg, composite), already in the project's convention.
- a depth model through ``transformers``' ``depth-estimation`` pipeline (a Hub id such as
  ``depth-anything/Depth-Anything-V2-Small-hf``, or a folder saved with ``save_pretrained``), run on
  the composite alone; its output brought to the project's convention by :func:`relative_to_depth`
  or :func:`metric_to_depth`.

Every teacher maps a batch of (bg, composite) pairs to (H, W) float32 depth maps in [0, 1], near = 1
(:data:`maskdepth.data.geometry.DEPTH_CONVENTION`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from maskdepth.data.geometry import Z_REF
from maskdepth.data.make_dataset import Teacher
from maskdepth.errors import InputError

NO_DEPTH = "none"
SHIPPED = "shipped"
WNET_PREFIX = "wnet:"
INSTALL_HINT = "pip install transformers"
# Relative (disparity) outputs are stretched per image between these percentiles: a few extreme
# pixels (a specular highlight, a sliver of sky) then do not squash the rest of the scene's range.
LOW_PERCENTILE = 2.0
HIGH_PERCENTILE = 98.0
# transformers model types whose depth output is metric (metres), not relative inverse depth.
METRIC_MODEL_TYPES = ("zoedepth", "glpn", "depth_pro")


# ---------------------------------------------------------------- conventions


def relative_to_depth(disparity: np.ndarray) -> np.ndarray:
    """Relative inverse depth (disparity: larger = nearer), (H, W) -> (H, W) float32 in [0, 1], near = 1.

    Per image: ``lo``, ``hi`` = the 2nd and 98th percentiles; depth = clip((d - lo) / (hi - lo), 0, 1).
    The scale of a relative model's output is arbitrary per image, so only its order and proportions
    carry over; a flat map (hi == lo) becomes 0.5 everywhere.
    """
    d = np.nan_to_num(np.asarray(disparity, dtype=np.float32))
    lo, hi = np.percentile(d, [LOW_PERCENTILE, HIGH_PERCENTILE])
    if hi - lo <= 1e-12:
        return np.full(d.shape, 0.5, dtype=np.float32)
    return np.clip((d - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def metric_to_depth(z_metres: np.ndarray) -> np.ndarray:
    """Metric depth z (metres), (H, W) -> the project's inverse depth clip(Z_REF / z, 0, 1), near = 1."""
    z = np.nan_to_num(np.asarray(z_metres, dtype=np.float32), nan=np.inf, posinf=np.inf)
    with np.errstate(divide="ignore"):
        return np.clip(Z_REF / np.maximum(z, 1e-6), 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------- the W-Net


@dataclass
class WNetTeacher:
    """The W-Net's own depth (any source :func:`maskdepth.hub.checkpoint.load_model` takes)."""

    source: str
    device: str = "cpu"
    batch_size: int = 16

    def __post_init__(self) -> None:
        from maskdepth.hub.checkpoint import load_model, shipped_source
        from maskdepth.predict.predictor import Predictor

        src = shipped_source() if self.source == SHIPPED else self.source.removeprefix(WNET_PREFIX)
        self.name = f"W-Net {src}" + (" (shipped)" if self.source == SHIPPED else "")
        self.licence = _card_licence(Path(src)) if Path(src).is_dir() else "unknown"
        self.normalisation = "none: the W-Net's depth is already in the convention"
        model = load_model(src, device=self.device)
        # An exact paste into one photo: nothing to register.
        self.predictor = Predictor(model, device=self.device, align=False)

    def __call__(self, pairs: Sequence[tuple[Image.Image, Image.Image]]) -> list[np.ndarray]:
        preds = self.predictor.predict_many([(fg, bg) for bg, fg in pairs], batch_size=self.batch_size)
        return [np.clip(p.depth, 0.0, 1.0).astype(np.float32) for p in preds]


# ---------------------------------------------------------------- transformers


@dataclass
class PipelineTeacher:
    """A ``transformers`` depth-estimation pipeline (Hub id or local folder), batched, on the GPU if any."""

    source: str
    device: str = "cpu"
    batch_size: int = 8

    def __post_init__(self) -> None:
        self.pipe = _load_pipeline(self.source, self.device)
        config = self.pipe.model.config
        self.metric = (
            getattr(config, "depth_estimation_type", None) == "metric"
            or getattr(config, "model_type", "") in METRIC_MODEL_TYPES
        )
        kind = "metric depth" if self.metric else "relative inverse depth"
        self.name = f"transformers {self.source} ({getattr(config, 'model_type', '?')}, {kind})"
        self.licence = _licence(self.source)
        self.normalisation = (
            f"metric output z in metres: clip(Z_REF / z, 0, 1) with Z_REF = {Z_REF} m"
            if self.metric
            else f"relative inverse depth (disparity) d: per image, clip((d - p{LOW_PERCENTILE:g}) / "
            f"(p{HIGH_PERCENTILE:g} - p{LOW_PERCENTILE:g}), 0, 1), pK the K-th percentile of the map"
        )

    def __call__(self, pairs: Sequence[tuple[Image.Image, Image.Image]]) -> list[np.ndarray]:
        images = [fg for _, fg in pairs]
        outputs = self.pipe(images, batch_size=self.batch_size)
        if isinstance(outputs, dict):
            outputs = [outputs]
        maps = []
        for image, out in zip(images, outputs, strict=True):
            raw = torch.as_tensor(out["predicted_depth"]).float()
            raw = raw.reshape(1, 1, *raw.shape[-2:])
            if raw.shape[-2:] != (image.height, image.width):  # older pipelines return the model's size
                raw = torch.nn.functional.interpolate(
                    raw, size=(image.height, image.width), mode="bilinear", align_corners=False
                )
            raw_np = raw[0, 0].cpu().numpy()
            maps.append(metric_to_depth(raw_np) if self.metric else relative_to_depth(raw_np))
        return maps


def _load_pipeline(source: str, device: str):
    """The pipeline for ``source``, or an InputError naming the fix (missing package, id, network)."""
    try:
        from transformers import pipeline
    except ImportError:
        raise InputError(
            f"--depth {source} needs the transformers package: {INSTALL_HINT} (or use --depth shipped)"
        ) from None
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_DEPTH_ESTIMATION_MAPPING_NAMES

    dev = 0 if device.startswith("cuda") else device
    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)  # its retry warnings would bury the one-line reason below
    try:
        config = AutoConfig.from_pretrained(source)  # config.json alone: a cheap check before the weights
        if config.model_type not in MODEL_FOR_DEPTH_ESTIMATION_MAPPING_NAMES:
            raise InputError(
                f"{source} is a {config.model_type} model, not a depth-estimation model: pick one the "
                "depth-estimation pipeline takes (e.g. depth-anything/Depth-Anything-V2-Small-hf; types: "
                f"{', '.join(MODEL_FOR_DEPTH_ESTIMATION_MAPPING_NAMES)})"
            )
        return pipeline("depth-estimation", model=source, device=dev)
    except (OSError, ValueError, KeyError) as e:
        raise InputError(_pipeline_problem(source, e)) from e
    finally:
        hub_logger.setLevel(level)


def _pipeline_problem(source: str, error: BaseException) -> str:
    """A one-line reason why ``source`` did not load as a depth model, with the fix."""
    names, chain = set(), error
    while chain is not None:
        names.add(type(chain).__name__)
        chain = chain.__cause__ or chain.__context__
    text = str(error)
    if Path(source).is_dir():
        return (
            f"{source} does not hold a complete transformers depth model ({text.splitlines()[0][:160]}): "
            "save both the model and its image processor there with save_pretrained"
        )
    if "RepositoryNotFoundError" in names or "not a valid model identifier" in text:
        return (
            f"no model {source!r} on the Hugging Face Hub (or it is private): check the id, e.g. "
            "depth-anything/Depth-Anything-V2-Small-hf, or log in with `hf auth login`"
        )
    offline = {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectionError", "ConnectError"}
    if names & offline or "connect" in text.lower() or "offline" in text.lower():
        return (
            f"cannot download {source}: no network and it is not in the Hugging Face cache; connect once "
            "to download it, or save it to a folder with save_pretrained and pass that folder"
        )
    if isinstance(error, (ValueError, KeyError)) or "Unrecognized" in text:
        return (
            f"{source} is not a depth-estimation model ({text.splitlines()[0][:160]}): pick one the "
            "depth-estimation pipeline takes, e.g. depth-anything/Depth-Anything-V2-Small-hf"
        )
    return f"cannot load {source} as a depth model: {text.splitlines()[0][:200]}"


def _licence(source: str) -> str:
    """The model card's licence line (a local README.md, or the Hub's card data), else 'unknown'."""
    if Path(source).is_dir():
        return _card_licence(Path(source))
    try:
        from huggingface_hub import model_info

        card = model_info(source).card_data
        return str(card.get("license") or "unknown") if card else "unknown"
    except Exception:  # noqa: BLE001 - the licence line is a courtesy; never fail a made dataset on it
        return "unknown"


def _card_licence(folder: Path) -> str:
    """``license:`` from a model card's front matter in ``folder``/README.md, else 'unknown'."""
    card = folder / "README.md"
    if card.is_file():
        for line in card.read_text(encoding="utf-8", errors="replace").splitlines()[:40]:
            if line.startswith("license:"):
                return line.split(":", 1)[1].strip() or "unknown"
    return "unknown"


# ---------------------------------------------------------------- choosing


def is_transformers_folder(folder: Path) -> bool:
    """A ``save_pretrained`` folder of transformers (its config.json names a ``model_type``)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "model_type" in config


def open_teacher(depth: str, device: str | None = None, batch_size: int = 8) -> Teacher | None:
    """The teacher for ``--depth``: None for ``none``; a W-Net or a transformers pipeline otherwise.

    ``shipped``, ``wnet:SOURCE``, a weights file or a W-Net folder -> :class:`WNetTeacher`; a
    transformers folder or any other ``owner/name`` -> :class:`PipelineTeacher`.
    """
    if depth == NO_DEPTH:
        return None
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    path = Path(os.path.expanduser(depth))
    if depth == SHIPPED or depth.startswith(WNET_PREFIX) or path.is_file():
        return WNetTeacher(depth, device=device, batch_size=batch_size)
    if path.is_dir():
        if is_transformers_folder(path):
            return PipelineTeacher(str(path), device=device, batch_size=batch_size)
        return WNetTeacher(str(path), device=device, batch_size=batch_size)
    if depth.count("/") == 1 and not depth.startswith((".", "/", "~")):
        return PipelineTeacher(depth, device=device, batch_size=batch_size)
    raise InputError(
        f"--depth {depth!r}: no such file or folder, and not a Hub id (owner/name): give 'shipped', "
        "'none', a W-Net folder or file, 'wnet:owner/name', or a transformers depth model "
        "(e.g. depth-anything/Depth-Anything-V2-Small-hf or a save_pretrained folder)"
    )

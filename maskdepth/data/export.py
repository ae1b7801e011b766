"""Writing any sample-dict dataset to disk, in the seed's layout or the plain one.

Both exporters write into a hidden temp folder next to ``out_dir`` and rename it into
place at the end, so an interrupted export never looks like a finished dataset.
The seed layout keeps the seed's ``.jpg`` names for every file: JPEG artefacts on masks
are undone by the 0.5 threshold on read (``folder.MASK_THRESHOLD``); depth loses a
little precision. The plain layout writes PNGs (depth as 16-bit).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sized
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from maskdepth.data.folder import LAYOUT_FILE, PLAIN_DIRS, SEED_DIRS, SEED_PREFIXES
from maskdepth.errors import DatasetError, InputError
from maskdepth.imageio import rgb_tile, save_image, save_png_rgb, save_png_u8, save_png_u16

ProgressFn = Callable[[int, int], None]


def _count(dataset: Any, n: int | None) -> int:
    """How many samples to export: ``n``, checked against ``len(dataset)`` when it has one."""
    size = len(dataset) if isinstance(dataset, Sized) else None
    if n is None:
        if size is None:
            raise InputError("this dataset has no length: pass n, the number of samples to export")
        return size
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InputError(f"n must be a positive number of samples, got {n!r}")
    if size is not None and n > size:
        raise InputError(f"cannot export {n} samples from a dataset of {size}: pass n <= {size}")
    return n


def _rgb_u8(t: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8."""
    return rgb_tile(t.detach().float().permute(1, 2, 0).cpu().numpy())


def _gray01(t: torch.Tensor) -> np.ndarray:
    """(1, H, W) or (H, W) float -> (H, W) float32 in [0, 1]."""
    return t.detach().float().clamp(0, 1).reshape(t.shape[-2], t.shape[-1]).cpu().numpy()


def _check_sample(sample: Any, i: int) -> None:
    """The dataset must yield the project's sample dict."""
    keys = ("bg", "fg_bg", "mask", "depth")
    if not isinstance(sample, dict) or any(k not in sample for k in keys):
        got = sorted(sample) if isinstance(sample, dict) else type(sample).__name__
        raise InputError(f"sample {i} is not a sample dict with keys {', '.join(keys)} (got {got})")


class _Staging:
    """A temp folder next to ``out_dir`` that becomes ``out_dir`` on success, vanishes on failure."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.out = Path(out_dir)
        if self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())):
            raise DatasetError(
                f"{self.out} already exists and is not empty: choose a new folder or delete it"
            )
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.export-", dir=self.out.parent))
        return self.tmp

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        assert self.tmp is not None
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        if self.out.exists():
            self.out.rmdir()  # empty (checked in __init__)
        os.replace(self.tmp, self.out)


def export_seed_layout(
    dataset: Any,
    out_dir: str | os.PathLike,
    n: int | None = None,
    *,
    quality: int = 95,
    on_progress: ProgressFn | None = None,
) -> Path:
    """Write the first ``n`` samples in the seed's layout (+ ``Bg/``, ``layout.json``); returns ``out_dir``.

    Backgrounds are written once each when the dataset has ``background_index(i)``;
    otherwise every sample gets its own ``bgK.jpg`` (``per_background = 1``).
    """
    n = _count(dataset, n)
    dedupe = callable(getattr(dataset, "background_index", None))
    staging = _Staging(out_dir)
    with staging as tmp:
        dirs = {key: tmp / SEED_DIRS[key] for key in ("fg_bg", "mask", "depth", "bg")}
        for d in dirs.values():
            d.mkdir()
        bg_number: dict[int, int] = {}  # dataset's background id -> K (1-based, order of first use)
        ks: list[int] = []
        for i in range(n):
            sample = dataset[i]
            _check_sample(sample, i)
            num = i + 1
            key = int(dataset.background_index(i)) if dedupe else i
            k = bg_number.get(key)
            if k is None:
                k = bg_number[key] = len(bg_number) + 1
                img = Image.fromarray(_rgb_u8(sample["bg"]))
                save_image(img, dirs["bg"] / f"{SEED_PREFIXES['bg']}{k}.jpg", quality=quality)
            ks.append(k)
            save_image(
                Image.fromarray(_rgb_u8(sample["fg_bg"])),
                dirs["fg_bg"] / f"{SEED_PREFIXES['fg_bg']}{num}.jpg",
                quality=quality,
            )
            mask = (_gray01(sample["mask"]) > 0.5).astype(np.uint8) * 255
            save_image(
                Image.fromarray(mask), dirs["mask"] / f"{SEED_PREFIXES['mask']}{num}.jpg", quality=quality
            )
            depth = np.rint(_gray01(sample["depth"]) * 255).astype(np.uint8)
            save_image(
                Image.fromarray(depth), dirs["depth"] / f"{SEED_PREFIXES['depth']}{num}.jpg", quality=quality
            )
            if on_progress is not None:
                on_progress(i + 1, n)
        (tmp / LAYOUT_FILE).write_text(json.dumps(_layout(ks), indent=1) + "\n", encoding="utf-8")
    return staging.out


def _layout(ks: list[int]) -> dict:
    """``layout.json`` content: seed-style blocks when ``ks`` allows, else the explicit list."""
    per_background = next((j for j, k in enumerate(ks) if k != 1), len(ks))  # size of the first block
    blocks = all(k == j // per_background + 1 for j, k in enumerate(ks))
    layout: dict[str, Any] = {"layout": "seed", "per_background": per_background, "per_set": len(ks)}
    if not blocks:
        # Samples are not grouped by background in equal blocks: name each one's background.
        layout["per_background"] = 1
        layout["backgrounds"] = ks
    return layout


def export_plain_layout(
    dataset: Any,
    out_dir: str | os.PathLike,
    n: int | None = None,
    *,
    on_progress: ProgressFn | None = None,
) -> Path:
    """Write the first ``n`` samples as PNGs in bg/ fg_bg/ mask/ depth/ (stems 00001...); returns out_dir."""
    n = _count(dataset, n)
    width = max(5, len(str(n)))
    staging = _Staging(out_dir)
    with staging as tmp:
        dirs = {key: tmp / key for key in PLAIN_DIRS}
        for d in dirs.values():
            d.mkdir()
        for i in range(n):
            sample = dataset[i]
            _check_sample(sample, i)
            stem = f"{i + 1:0{width}d}.png"
            save_png_rgb(_rgb_u8(sample["bg"]), dirs["bg"] / stem)
            save_png_rgb(_rgb_u8(sample["fg_bg"]), dirs["fg_bg"] / stem)
            save_png_u8((_gray01(sample["mask"]) > 0.5).astype(np.float32), dirs["mask"] / stem)
            save_png_u16(_gray01(sample["depth"]), dirs["depth"] / stem)
            if on_progress is not None:
                on_progress(i + 1, n)
    return staging.out

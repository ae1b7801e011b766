"""What the folder datasets share: the layouts' names, file listing, and loading a sample.

The layouts themselves: :mod:`maskdepth.data.seed_layout` and :mod:`maskdepth.data.plain_layout`;
:func:`maskdepth.data.folder.open_folder_dataset` tells them apart.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from maskdepth.errors import DatasetError, InputError
from maskdepth.imageio import open_gray, open_image
from maskdepth.naming import is_image_name

# The seed's recipe: 100 backgrounds x 100 foregrounds x 20 positions x 2 (flipped or not),
# shipped as 5 zip sets; every set holds all 100 backgrounds, grouped in equal blocks.
SEED_BACKGROUNDS = 100
SEED_FOREGROUNDS = 100
SEED_POSITIONS = 20
SEED_FLIPS = 2
SEED_SETS = 5
SEED_TOTAL = SEED_BACKGROUNDS * SEED_FOREGROUNDS * SEED_POSITIONS * SEED_FLIPS  # 400,000
SEED_PER_SET = SEED_TOTAL // SEED_SETS  # 80,000 samples in each set
SEED_PER_BACKGROUND = SEED_PER_SET // SEED_BACKGROUNDS  # 800 consecutive samples share a bg

SEED_DIRS = {"fg_bg": "Fg-Bg", "mask": "Fg-Bg-Mask", "depth": "Depth", "bg": "Bg"}
SEED_PREFIXES = {"fg_bg": "fg-bg", "mask": "fg-bg-mask", "depth": "depth", "bg": "bg"}
PLAIN_DIRS = ("bg", "fg_bg", "mask", "depth")
LAYOUT_FILE = "layout.json"
MASK_THRESHOLD = 0.5  # restores a binary mask after resizing or JPEG artefacts
SHOW_NAMES = 5  # how many file names an error message lists

K = TypeVar("K")


# ---------------------------------------------------------------- helpers


def natural_key(s: str) -> list:
    """Sort key that orders 'set2' before 'set10'."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


def list_names(items: Sequence[str], show: int = SHOW_NAMES, total: int | None = None) -> str:
    """'a, b, c and 12 more' for error messages (``total`` when ``items`` is already cut)."""
    items = list(items)
    total = len(items) if total is None else total
    head = ", ".join(items[:show])
    return head if total <= show else f"{head} and {total - show} more"


def find_dir(root: Path, name: str) -> Path | None:
    """The child folder of ``root`` called ``name`` (exact first, then case-insensitive)."""
    exact = root / name
    if exact.is_dir():
        return exact
    try:
        for entry in os.scandir(root):
            if entry.name.lower() == name.lower() and entry.is_dir():
                return Path(entry.path)
    except OSError:
        return None
    return None


def visible_subdirs(root: Path) -> list[Path]:
    """Non-hidden sub-folders of ``root`` in natural order (``__MACOSX`` skipped)."""
    try:
        entries = [e for e in os.scandir(root) if e.is_dir() and not e.name.startswith((".", "__MACOSX"))]
    except OSError as e:
        raise DatasetError(f"cannot list {root} ({e}): check the path and its permissions") from e
    return [Path(e.path) for e in sorted(entries, key=lambda e: natural_key(e.name))]


def image_files(folder: Path) -> list[str]:
    """Names of the (non-hidden) image files directly in ``folder``."""
    try:
        return [
            e.name
            for e in os.scandir(folder)
            if not e.name.startswith(".") and is_image_name(e.name) and e.is_file()
        ]
    except OSError as e:
        raise DatasetError(f"cannot list {folder} ({e}): check the path and its permissions") from e


def index_images(folder: Path, key_of: Callable[[str], K | None], *, same: str, fix: str) -> dict[K, str]:
    """The image files in ``folder`` by ``key_of(name)`` (names it gives None are skipped).

    Raises:
        DatasetError: several files share a key; the message lists them as ``"{folder} has several
            files {same}: a.png / a.jpg; {fix}"``.
    """
    found: dict[K, str] = {}
    dupes = []
    for name in image_files(folder):
        key = key_of(name)
        if key is None:
            continue
        if key in found:
            dupes.append(f"{found[key]} / {name}")
        found[key] = name
    if dupes:
        raise DatasetError(f"{folder} has several files {same}: {list_names(sorted(dupes))}; {fix}")
    return found


def _resize_rgb(img: Image.Image, size: int) -> torch.Tensor:
    """RGB PIL image -> (3, size, size) float32 in [0, 1] (bilinear, antialiased when shrinking)."""
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.array(img, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


def _resize_gray(arr: np.ndarray, size: int) -> np.ndarray:
    """(H, W) float32 -> (size, size) float32 (bilinear on the float values, no 8-bit rounding)."""
    if arr.shape != (size, size):
        arr = np.asarray(Image.fromarray(arr.astype(np.float32)).resize((size, size), Image.BILINEAR))
    return np.clip(arr, 0.0, 1.0).astype(np.float32)


def load_sample(paths: Mapping[str, Path], size: int) -> dict[str, torch.Tensor]:
    """Read one sample's four files -> the sample dict, all (C, size, size) float32 in [0, 1]."""
    try:
        bg = _resize_rgb(open_image(paths["bg"]), size)
        fg_bg = _resize_rgb(open_image(paths["fg_bg"]), size)
        mask = _resize_gray(open_gray(paths["mask"]), size) > MASK_THRESHOLD
        depth = _resize_gray(open_gray(paths["depth"]), size)
    except InputError as e:
        raise DatasetError(
            f"dataset file unreadable: {e}; or remove that sample's files from the dataset"
        ) from e
    return {
        "bg": bg,
        "fg_bg": fg_bg,
        "mask": torch.from_numpy(mask.astype(np.float32))[None],
        "depth": torch.from_numpy(depth)[None],
    }


def masks_only_note(root: Path) -> str:
    """For a set ``make-dataset --depth none`` wrote (its manifest.json says so): why it has no depth
    folder and the fix; else ''. The training loop scores both heads, so it needs depth targets."""
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    depth = manifest.get("depth") if isinstance(manifest, dict) else None
    if not isinstance(depth, dict) or depth.get("source") != "none":
        return ""
    return (
        f"{root} was made with make-dataset --depth none (masks only), and training needs depth targets: "
        "make it again with --depth shipped or a depth model (see docs/your-photos.md)"
    )


def check_size(size: int) -> int:
    """Validate the square training size."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise InputError(f"size must be a positive integer (e.g. 64), got {size!r}")
    return size


# ---------------------------------------------------------------- base


class FolderDataset(Dataset):
    """Common base: subclasses give ``sample_paths(i)``; this loads and resizes the files."""

    size: int

    def __len__(self) -> int:
        raise NotImplementedError

    def sample_paths(self, i: int) -> dict[str, Path]:
        """The four files of sample ``i``: keys ``bg``, ``fg_bg``, ``mask``, ``depth``."""
        raise NotImplementedError

    def background_index(self, i: int) -> int:
        """An int identifying sample ``i``'s background file (equal ints = same file)."""
        raise NotImplementedError

    def _index(self, i: int) -> int:
        """Python-style index check (negative indices allowed)."""
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"sample index {i} out of range for a dataset of {n}")
        return i

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """The sample dict: bg/fg_bg (3, S, S), mask/depth (1, S, S), float32 in [0, 1]."""
        return load_sample(self.sample_paths(self._index(int(i))), self.size)

"""Datasets over image folders on disk: the seed's layout and a plain one.

Every dataset here returns the project's sample dict of float32 tensors in [0, 1],
all resized to a square ``size``: ``bg`` (3, S, S), ``fg_bg`` (3, S, S), ``mask``
(1, S, S) binary (white in the file = object), ``depth`` (1, S, S) (bright = near = 1).

Seed layout (one set; see SEED.md)::

    <set>/Fg-Bg/fg-bgN.jpg  <set>/Fg-Bg-Mask/fg-bg-maskN.jpg  <set>/Depth/depthN.jpg
    <set>/Bg/bgK.jpg        (K = ceil(i / per_background), i = (N - 1) % per_set + 1)
    <set>/layout.json       (optional, written by our exporter)

Backgrounds are looked up, per K, in ``<set>/Bg/``, then loose in ``<set>/``, then (for a
root holding several sets) in ``<root>/Bg/``, which the sets then share. ``layout.json``
holds ``{"per_background": P, "per_set": S}`` and optionally ``"backgrounds": [K_1, ...]``,
an explicit background number for every N (for exports whose samples are not grouped by
background). Constructor arguments override it; without either, the seed's numbers apply.

Plain layout: ``bg/``, ``fg_bg/``, ``mask/``, ``depth/`` holding files with matching stems
(any of .png .jpg .jpeg .webp .bmp .tif .tiff), one bg per sample.

Construction only lists files (cheap); pixels are decoded in ``__getitem__``. The shared pieces
live in :mod:`maskdepth.data.folder_base`, the layouts in :mod:`maskdepth.data.seed_layout` and
:mod:`maskdepth.data.plain_layout`; everything public is importable from here.
"""

from __future__ import annotations

import os
from pathlib import Path

from maskdepth.data.folder_base import (
    LAYOUT_FILE,
    MASK_THRESHOLD,
    PLAIN_DIRS,
    SEED_BACKGROUNDS,
    SEED_DIRS,
    SEED_FLIPS,
    SEED_FOREGROUNDS,
    SEED_PER_BACKGROUND,
    SEED_PER_SET,
    SEED_POSITIONS,
    SEED_PREFIXES,
    SEED_SETS,
    SEED_TOTAL,
    FolderDataset,
    find_dir,
    list_names,
    load_sample,
    visible_subdirs,
)
from maskdepth.data.plain_layout import PlainLayoutDataset
from maskdepth.data.seed_layout import SeedLayoutDataset
from maskdepth.errors import DatasetError
from maskdepth.naming import IMAGE_SUFFIXES

__all__ = [
    "IMAGE_SUFFIXES",
    "LAYOUT_FILE",
    "MASK_THRESHOLD",
    "PLAIN_DIRS",
    "SEED_BACKGROUNDS",
    "SEED_DIRS",
    "SEED_FLIPS",
    "SEED_FOREGROUNDS",
    "SEED_PER_BACKGROUND",
    "SEED_PER_SET",
    "SEED_POSITIONS",
    "SEED_PREFIXES",
    "SEED_SETS",
    "SEED_TOTAL",
    "FolderDataset",
    "PlainLayoutDataset",
    "SeedLayoutDataset",
    "load_sample",
    "open_folder_dataset",
]

# ---------------------------------------------------------------- detection


def open_folder_dataset(root: str | os.PathLike, size: int = 64, **kwargs: int) -> FolderDataset:
    """Open ``root`` as a plain or seed-layout dataset (kwargs go to ``SeedLayoutDataset``)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"{root} is not a folder: give the dataset folder (unzip it first, or use safe_extract)"
        )
    if find_dir(root, "fg_bg") is not None:
        return PlainLayoutDataset(root, size)  # reports any missing bg/ mask/ depth/ folder
    if find_dir(root, SEED_DIRS["fg_bg"]) is not None:
        return SeedLayoutDataset(root, size, **kwargs)
    if any(find_dir(d, SEED_DIRS["fg_bg"]) is not None for d in visible_subdirs(root)):
        return SeedLayoutDataset(root, size, **kwargs)
    subdirs = visible_subdirs(root)
    if len(subdirs) == 1 and not any(p.is_file() and not p.name.startswith(".") for p in root.iterdir()):
        return open_folder_dataset(subdirs[0], size, **kwargs)  # a wrapper folder, as zips often have
    found = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir() if not p.name.startswith("."))
    raise DatasetError(
        f"{root} is not a dataset folder: expected the plain layout (folders {', '.join(PLAIN_DIRS)}) "
        "or the seed layout (folders Fg-Bg, Fg-Bg-Mask, Depth, Bg, or set folders holding them); found "
        f"{list_names(found, 10) or 'nothing'}"
    )

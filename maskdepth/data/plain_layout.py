"""The plain folder layout: ``bg/``, ``fg_bg/``, ``mask/``, ``depth/`` with matching file stems."""

from __future__ import annotations

import os
from pathlib import Path

from maskdepth.data.folder_base import (
    PLAIN_DIRS,
    FolderDataset,
    check_size,
    find_dir,
    index_images,
    list_names,
    masks_only_note,
    natural_key,
)
from maskdepth.errors import DatasetError

# ---------------------------------------------------------------- plain layout


class PlainLayoutDataset(FolderDataset):
    """``bg/``, ``fg_bg/``, ``mask/``, ``depth/`` with one file per sample and matching stems."""

    def __init__(self, root: str | os.PathLike, size: int = 64) -> None:
        self.root = Path(root)
        self.size = check_size(size)
        dirs = {key: find_dir(self.root, key) for key in PLAIN_DIRS}
        missing_dirs = [k for k, d in dirs.items() if d is None]
        if missing_dirs == ["depth"] and masks_only_note(self.root):
            raise DatasetError(masks_only_note(self.root))
        if missing_dirs:
            raise DatasetError(
                f"{self.root} is missing the folder(s) {', '.join(missing_dirs)}: the plain layout needs "
                f"{', '.join(PLAIN_DIRS)} side by side"
            )
        self._dirs: dict[str, Path] = dirs  # type: ignore[assignment]
        self._names: dict[str, dict[str, str]] = {}
        for key, folder in self._dirs.items():
            self._names[key] = index_images(
                folder, lambda name: os.path.splitext(name)[0], same="with the same name", fix="keep one"
            )
        self._stems = sorted(self._names["fg_bg"], key=natural_key)
        if not self._stems:
            raise DatasetError(f"{self._dirs['fg_bg']} holds no images (.png/.jpg/...): check the folder")
        stems = set(self._stems)
        problems = []
        for key in ("bg", "mask", "depth"):
            have = set(self._names[key])
            lacking = sorted(stems - have, key=natural_key)
            extra = sorted(have - stems, key=natural_key)
            if lacking:
                names = [f"{s}.*" for s in lacking]
                problems.append(f"{key}/ is missing {len(lacking)} files: {list_names(names)}")
            if extra:
                names = [self._names[key][s] for s in extra]
                problems.append(
                    f"{key}/ has {len(extra)} files with no matching fg_bg image: {list_names(names)}"
                )
        if problems:
            counts = ", ".join(f"{k}/ {len(self._names[k])}" for k in PLAIN_DIRS)
            raise DatasetError(
                f"{self.root}: file counts differ ({counts}); "
                + "; ".join(problems)
                + ": every fg_bg image needs a bg, mask and depth file with the same name"
            )

    def __len__(self) -> int:
        return len(self._stems)

    def sample_paths(self, i: int) -> dict[str, Path]:
        """The four files of sample ``i``: keys ``bg``, ``fg_bg``, ``mask``, ``depth``."""
        stem = self._stems[self._index(int(i))]
        return {key: self._dirs[key] / self._names[key][stem] for key in PLAIN_DIRS}

    def background_index(self, i: int) -> int:
        """Each sample has its own bg file in this layout: the index itself."""
        return self._index(int(i))

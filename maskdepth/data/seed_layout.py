"""The seed's folder layout (see :mod:`maskdepth.data.folder` for the format)."""

from __future__ import annotations

import bisect
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskdepth.data.folder_base import (
    LAYOUT_FILE,
    SEED_DIRS,
    SEED_PER_BACKGROUND,
    SEED_PER_SET,
    SEED_PREFIXES,
    SHOW_NAMES,
    FolderDataset,
    check_size,
    find_dir,
    index_images,
    list_names,
    masks_only_note,
    visible_subdirs,
)
from maskdepth.errors import DatasetError


@dataclass
class _Numbered:
    """Files ``<prefix><N><suffix>`` in one folder, indexed by N (compact for 80k+ files)."""

    folder: Path
    numbers: np.ndarray  # sorted int64 N
    prefix: str
    suffix: str
    paths: dict[int, str] | None  # None when every file is exactly folder / f"{prefix}{N}{suffix}"

    def name(self, n: int) -> str:
        """The file name for number ``n`` (assumed present)."""
        return os.path.basename(self.paths[n]) if self.paths is not None else f"{self.prefix}{n}{self.suffix}"

    def path(self, n: int) -> Path:
        """The path for number ``n`` (assumed present)."""
        return Path(self.paths[n]) if self.paths is not None else self.folder / self.name(n)


def _scan_numbered(folders: Iterable[Path], prefix: str, default_suffix: str = ".jpg") -> _Numbered:
    """Index ``<prefix><N>.<img>`` files; earlier folders win; duplicates in one folder are an error."""
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)(\.[A-Za-z]+)$", re.IGNORECASE)

    def number_of(name: str) -> int | None:
        m = pattern.match(name)
        return int(m.group(1)) if m else None

    found: dict[int, Path] = {}
    for folder in folders:
        here = index_images(folder, number_of, same="for the same number", fix="keep one of each")
        for n, name in here.items():
            found.setdefault(n, folder / name)
    numbers = np.array(sorted(found), dtype=np.int64)
    folders_used = {p.parent for p in found.values()}
    suffixes = {p.suffix for p in found.values()}
    if len(folders_used) == 1 and len(suffixes) == 1:
        folder = folders_used.pop()
        suffix = suffixes.pop()
        if all(p.name == f"{prefix}{n}{suffix}" for n, p in found.items()):
            return _Numbered(folder, numbers, prefix, suffix, None)
    # Mixed suffixes, folders or spellings (fg-bg007.jpg): keep every path.
    first = next(iter(found.values()), None)
    folder = first.parent if first is not None else Path(".")
    suffix = first.suffix if first is not None else default_suffix
    return _Numbered(folder, numbers, prefix, suffix, {n: str(p) for n, p in found.items()})


# ---------------------------------------------------------------- seed layout


def _read_layout_json(folder: Path) -> dict:
    """``layout.json`` in ``folder`` as a dict ({} when absent)."""
    path = folder / LAYOUT_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{path} is not valid JSON ({e}): fix it or delete it") from e
    if not isinstance(data, dict):
        raise DatasetError(f'{path} must hold a JSON object like {{"per_background": 800}}: fix or delete it')
    return data


def _positive(value: object, what: str, where: str) -> int:
    """Validate a positive int setting."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DatasetError(f"{what} must be a positive integer, got {value!r} (from {where}): fix it")
    return value


class SeedLayoutDataset(FolderDataset):
    """The seed's ``Fg-Bg`` / ``Fg-Bg-Mask`` / ``Depth`` / ``Bg`` layout: one set, or a root of sets."""

    def __init__(
        self,
        root: str | os.PathLike,
        size: int = 64,
        *,
        per_background: int | None = None,
        per_set: int | None = None,
        _shared_bg: Path | None = None,
        _root_layout: Mapping | None = None,
    ) -> None:
        self.root = Path(root)
        self.size = check_size(size)
        if not self.root.is_dir():
            raise DatasetError(
                f"{self.root} is not a folder: give the folder that holds Fg-Bg/ (or the set folders)"
            )
        self._parts: list[SeedLayoutDataset] = []
        if find_dir(self.root, SEED_DIRS["fg_bg"]) is None:
            self._init_multi(per_background, per_set)
        else:
            self._init_set(per_background, per_set, _shared_bg, _root_layout or {})

    # -- a root whose sub-folders are sets
    def _init_multi(self, per_background: int | None, per_set: int | None) -> None:
        subdirs = [d for d in visible_subdirs(self.root) if find_dir(d, SEED_DIRS["fg_bg"]) is not None]
        if not subdirs:
            found = sorted(p.name for p in self.root.iterdir()) if self.root.is_dir() else []
            raise DatasetError(
                f"{self.root} is not in the seed layout: expected folders Fg-Bg, Fg-Bg-Mask, Depth (and Bg), "
                f"or set folders that hold them; found {list_names(found) or 'nothing'}"
            )
        shared = find_dir(self.root, SEED_DIRS["bg"])
        layout = _read_layout_json(self.root)
        self._parts = [
            SeedLayoutDataset(
                d,
                self.size,
                per_background=per_background,
                per_set=per_set,
                _shared_bg=shared,
                _root_layout=layout,
            )
            for d in subdirs
        ]
        self._offsets = np.cumsum([0] + [len(p) for p in self._parts]).tolist()
        # Global background ids: the same file (e.g. a shared <root>/Bg/bg3.jpg) gets the same id.
        ids: dict[Path, int] = {}
        self._part_bg_ids = [
            {k: ids.setdefault(part._bg.path(k), len(ids)) for k in part._bg.numbers.tolist()}
            for part in self._parts
        ]

    # -- one set
    def _init_set(
        self, per_background: int | None, per_set: int | None, shared_bg: Path | None, root_layout: Mapping
    ) -> None:
        root = self.root
        dirs = {key: find_dir(root, SEED_DIRS[key]) for key in ("fg_bg", "mask", "depth")}
        missing_dirs = [SEED_DIRS[k] for k, d in dirs.items() if d is None]
        if missing_dirs == [SEED_DIRS["depth"]] and masks_only_note(root):
            raise DatasetError(masks_only_note(root))
        if missing_dirs:
            raise DatasetError(
                f"{root} has Fg-Bg but no {' or '.join(missing_dirs)} folder: the seed layout needs "
                "Fg-Bg, Fg-Bg-Mask and Depth side by side"
            )
        layout = {**root_layout, **_read_layout_json(root)}
        where = f"{root / LAYOUT_FILE}" if layout else "the seed defaults"
        self.per_background = _positive(
            per_background
            if per_background is not None
            else layout.get("per_background", SEED_PER_BACKGROUND),
            "per_background",
            "the argument" if per_background is not None else where,
        )
        self.per_set = _positive(
            per_set if per_set is not None else layout.get("per_set", SEED_PER_SET),
            "per_set",
            "the argument" if per_set is not None else where,
        )

        fg = _scan_numbered([dirs["fg_bg"]], SEED_PREFIXES["fg_bg"])
        mask = _scan_numbered([dirs["mask"]], SEED_PREFIXES["mask"])
        depth = _scan_numbered([dirs["depth"]], SEED_PREFIXES["depth"])
        if len(fg.numbers) == 0:
            raise DatasetError(f"{dirs['fg_bg']} holds no fg-bgN images (e.g. fg-bg1.jpg): check the folder")
        problems = []
        for other in (mask, depth):
            lacking = np.setdiff1d(fg.numbers, other.numbers)
            extra = np.setdiff1d(other.numbers, fg.numbers)
            folder = dirs["mask"] if other is mask else dirs["depth"]
            if len(lacking):
                names = [f"{other.prefix}{n}{other.suffix}" for n in lacking[:SHOW_NAMES].tolist()]
                problems.append(
                    f"{folder} is missing {len(lacking)} files: {list_names(names, total=len(lacking))}"
                )
            if len(extra):
                names = [other.name(n) for n in extra[:SHOW_NAMES].tolist()]
                problems.append(
                    f"{folder} has {len(extra)} files with no matching Fg-Bg image: "
                    f"{list_names(names, total=len(extra))}"
                )
        if problems:
            counts = (
                f"Fg-Bg has {len(fg.numbers)}, Fg-Bg-Mask {len(mask.numbers)}, "
                f"Depth {len(depth.numbers)} images"
            )
            raise DatasetError(
                f"{root}: {counts}; " + "; ".join(problems) + ": restore them or remove the extras"
            )

        # Background number K of every sample.
        explicit = layout.get("backgrounds")
        if per_background is None and per_set is None and explicit is not None:
            if not isinstance(explicit, list) or not all(isinstance(k, int) and k >= 1 for k in explicit):
                raise DatasetError(
                    f"{root / LAYOUT_FILE}: 'backgrounds' must be a list of ints >= 1: fix or delete it"
                )
            if int(fg.numbers[-1]) > len(explicit):
                raise DatasetError(
                    f"{root / LAYOUT_FILE} lists backgrounds for {len(explicit)} samples but Fg-Bg goes "
                    f"up to fg-bg{int(fg.numbers[-1])}: export the set again"
                )
            ks = np.asarray(explicit, dtype=np.int64)[fg.numbers - 1]
        else:
            i_in_set = (fg.numbers - 1) % self.per_set + 1
            ks = (i_in_set - 1) // self.per_background + 1

        bg_folders = [d for d in (find_dir(root, SEED_DIRS["bg"]), root, shared_bg) if d is not None]
        bg = _scan_numbered(bg_folders, SEED_PREFIXES["bg"])
        lacking = np.setdiff1d(np.unique(ks), bg.numbers)
        if len(lacking):
            names = [f"bg{k}.jpg" for k in lacking[:SHOW_NAMES].tolist()]
            looked = ", ".join(str(d) for d in bg_folders)
            raise DatasetError(
                f"{root}: {len(lacking)} backgrounds are missing: {list_names(names, total=len(lacking))} "
                f"(looked in {looked}; "
                f"per_background={self.per_background}, per_set={self.per_set}): add them to {root / 'Bg'} "
                "or pass the right per_background / per_set"
            )
        self._fg, self._mask, self._depth, self._bg = fg, mask, depth, bg
        self._bg_numbers = ks

    # -- public API
    @property
    def parts(self) -> list[SeedLayoutDataset]:
        """One dataset per set folder (``[self]`` for a single set), for training set after set."""
        return list(self._parts) if self._parts else [self]

    def __len__(self) -> int:
        return self._offsets[-1] if self._parts else len(self._fg.numbers)

    def _locate(self, i: int) -> tuple[int, int]:
        """(part index, index inside that part) of global index ``i``."""
        p = bisect.bisect_right(self._offsets, i) - 1
        return p, i - self._offsets[p]

    def sample_paths(self, i: int) -> dict[str, Path]:
        """The four files of sample ``i``: keys ``bg``, ``fg_bg``, ``mask``, ``depth``."""
        i = self._index(int(i))
        if self._parts:
            p, j = self._locate(i)
            return self._parts[p].sample_paths(j)
        n = int(self._fg.numbers[i])
        return {
            "bg": self._bg.path(int(self._bg_numbers[i])),
            "fg_bg": self._fg.path(n),
            "mask": self._mask.path(n),
            "depth": self._depth.path(n),
        }

    def background_index(self, i: int) -> int:
        """An int identifying sample ``i``'s background file (equal ints = same file)."""
        i = self._index(int(i))
        if self._parts:
            p, j = self._locate(i)
            return self._part_bg_ids[p][int(self._parts[p]._bg_numbers[j])]
        return int(self._bg_numbers[i])

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

Construction only lists files (cheap); pixels are decoded in ``__getitem__``.
"""

from __future__ import annotations

import bisect
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from maskdepth.errors import DatasetError, InputError
from maskdepth.imageio import open_gray, open_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

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
_SHOW = 5  # how many file names an error message lists


# ---------------------------------------------------------------- helpers


def _natural_key(s: str) -> list:
    """Sort key that orders 'set2' before 'set10'."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


def _names(items: Sequence[str], show: int = _SHOW, total: int | None = None) -> str:
    """'a, b, c and 12 more' for error messages (``total`` when ``items`` is already cut)."""
    items = list(items)
    total = len(items) if total is None else total
    head = ", ".join(items[:show])
    return head if total <= show else f"{head} and {total - show} more"


def _find_dir(root: Path, name: str) -> Path | None:
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


def _visible_subdirs(root: Path) -> list[Path]:
    """Non-hidden sub-folders of ``root`` in natural order (``__MACOSX`` skipped)."""
    try:
        entries = [e for e in os.scandir(root) if e.is_dir() and not e.name.startswith((".", "__MACOSX"))]
    except OSError as e:
        raise DatasetError(f"cannot list {root} ({e}): check the path and its permissions") from e
    return [Path(e.path) for e in sorted(entries, key=lambda e: _natural_key(e.name))]


def _image_files(folder: Path) -> list[str]:
    """Names of the (non-hidden) image files directly in ``folder``."""
    try:
        return [
            e.name
            for e in os.scandir(folder)
            if not e.name.startswith(".")
            and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES
            and e.is_file()
        ]
    except OSError as e:
        raise DatasetError(f"cannot list {folder} ({e}): check the path and its permissions") from e


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
    found: dict[int, Path] = {}
    for folder in folders:
        here: dict[int, str] = {}
        dupes: list[str] = []
        for name in _image_files(folder):
            m = pattern.match(name)
            if m is None:
                continue
            n = int(m.group(1))
            if n in here:
                dupes.append(f"{here[n]} / {name}")
            here[n] = name
        if dupes:
            raise DatasetError(
                f"{folder} has several files for the same number: {_names(sorted(dupes))}; keep one of each"
            )
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


def _check_size(size: int) -> int:
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
        self.size = _check_size(size)
        if not self.root.is_dir():
            raise DatasetError(
                f"{self.root} is not a folder: give the folder that holds Fg-Bg/ (or the set folders)"
            )
        self._parts: list[SeedLayoutDataset] = []
        if _find_dir(self.root, SEED_DIRS["fg_bg"]) is None:
            self._init_multi(per_background, per_set)
        else:
            self._init_set(per_background, per_set, _shared_bg, _root_layout or {})

    # -- a root whose sub-folders are sets
    def _init_multi(self, per_background: int | None, per_set: int | None) -> None:
        subdirs = [d for d in _visible_subdirs(self.root) if _find_dir(d, SEED_DIRS["fg_bg"]) is not None]
        if not subdirs:
            found = sorted(p.name for p in self.root.iterdir()) if self.root.is_dir() else []
            raise DatasetError(
                f"{self.root} is not in the seed layout: expected folders Fg-Bg, Fg-Bg-Mask, Depth (and Bg), "
                f"or set folders that hold them; found {_names(found) or 'nothing'}"
            )
        shared = _find_dir(self.root, SEED_DIRS["bg"])
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
        dirs = {key: _find_dir(root, SEED_DIRS[key]) for key in ("fg_bg", "mask", "depth")}
        missing_dirs = [SEED_DIRS[k] for k, d in dirs.items() if d is None]
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
                names = [f"{other.prefix}{n}{other.suffix}" for n in lacking[:_SHOW].tolist()]
                problems.append(
                    f"{folder} is missing {len(lacking)} files: {_names(names, total=len(lacking))}"
                )
            if len(extra):
                names = [other.name(n) for n in extra[:_SHOW].tolist()]
                problems.append(
                    f"{folder} has {len(extra)} files with no matching Fg-Bg image: "
                    f"{_names(names, total=len(extra))}"
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

        bg_folders = [d for d in (_find_dir(root, SEED_DIRS["bg"]), root, shared_bg) if d is not None]
        bg = _scan_numbered(bg_folders, SEED_PREFIXES["bg"])
        lacking = np.setdiff1d(np.unique(ks), bg.numbers)
        if len(lacking):
            names = [f"bg{k}.jpg" for k in lacking[:_SHOW].tolist()]
            looked = ", ".join(str(d) for d in bg_folders)
            raise DatasetError(
                f"{root}: {len(lacking)} backgrounds are missing: {_names(names, total=len(lacking))} "
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


# ---------------------------------------------------------------- plain layout


class PlainLayoutDataset(FolderDataset):
    """``bg/``, ``fg_bg/``, ``mask/``, ``depth/`` with one file per sample and matching stems."""

    def __init__(self, root: str | os.PathLike, size: int = 64) -> None:
        self.root = Path(root)
        self.size = _check_size(size)
        dirs = {key: _find_dir(self.root, key) for key in PLAIN_DIRS}
        missing_dirs = [k for k, d in dirs.items() if d is None]
        if missing_dirs:
            raise DatasetError(
                f"{self.root} is missing the folder(s) {', '.join(missing_dirs)}: the plain layout needs "
                f"{', '.join(PLAIN_DIRS)} side by side"
            )
        self._dirs: dict[str, Path] = dirs  # type: ignore[assignment]
        self._names: dict[str, dict[str, str]] = {}
        for key, folder in self._dirs.items():
            by_stem: dict[str, str] = {}
            dupes = []
            for name in _image_files(folder):
                stem = os.path.splitext(name)[0]
                if stem in by_stem:
                    dupes.append(f"{by_stem[stem]} / {name}")
                by_stem[stem] = name
            if dupes:
                raise DatasetError(
                    f"{folder} has several files with the same name: {_names(sorted(dupes))}; keep one"
                )
            self._names[key] = by_stem
        self._stems = sorted(self._names["fg_bg"], key=_natural_key)
        if not self._stems:
            raise DatasetError(f"{self._dirs['fg_bg']} holds no images (.png/.jpg/...): check the folder")
        stems = set(self._stems)
        problems = []
        for key in ("bg", "mask", "depth"):
            have = set(self._names[key])
            lacking = sorted(stems - have, key=_natural_key)
            extra = sorted(have - stems, key=_natural_key)
            if lacking:
                names = [f"{s}.*" for s in lacking]
                problems.append(f"{key}/ is missing {len(lacking)} files: {_names(names)}")
            if extra:
                names = [self._names[key][s] for s in extra]
                problems.append(
                    f"{key}/ has {len(extra)} files with no matching fg_bg image: {_names(names)}"
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


# ---------------------------------------------------------------- detection


def open_folder_dataset(root: str | os.PathLike, size: int = 64, **kwargs: int) -> FolderDataset:
    """Open ``root`` as a plain or seed-layout dataset (kwargs go to ``SeedLayoutDataset``)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"{root} is not a folder: give the dataset folder (unzip it first, or use safe_extract)"
        )
    if _find_dir(root, "fg_bg") is not None:
        return PlainLayoutDataset(root, size)  # reports any missing bg/ mask/ depth/ folder
    if _find_dir(root, SEED_DIRS["fg_bg"]) is not None:
        return SeedLayoutDataset(root, size, **kwargs)
    if any(_find_dir(d, SEED_DIRS["fg_bg"]) is not None for d in _visible_subdirs(root)):
        return SeedLayoutDataset(root, size, **kwargs)
    subdirs = _visible_subdirs(root)
    if len(subdirs) == 1 and not any(p.is_file() and not p.name.startswith(".") for p in root.iterdir()):
        return open_folder_dataset(subdirs[0], size, **kwargs)  # a wrapper folder, as zips often have
    found = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir() if not p.name.startswith("."))
    raise DatasetError(
        f"{root} is not a dataset folder: expected the plain layout (folders {', '.join(PLAIN_DIRS)}) "
        "or the seed layout (folders Fg-Bg, Fg-Bg-Mask, Depth, Bg, or set folders holding them); found "
        f"{_names(found, 10) or 'nothing'}"
    )

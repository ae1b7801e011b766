"""Make a training set from your own photos, the seed's way (``python -m maskdepth make-dataset``).

Every cut-out (RGBA; its alpha is the outline) is pasted on every background at ``positions`` seeded
places and again mirrored: B x O x N x 2 samples, the mask from the alpha, the depth from a teacher
(:mod:`maskdepth.predict.teachers`). Sample ``i`` is background ``b``, object ``o``, place ``p``, mirror
``m`` with ``i = ((b * O + o) * N + p) * 2 + m``, so each background's samples are one block, as in the
seed's sets.

Written into a hidden folder beside ``out`` (``.NAME.partial``), one sample at a time (each file
atomic; a sample counts as written once its composite, written last, is there), and renamed to
``out`` with ``manifest.json`` at the end: an interrupted run never looks finished, and running the
same command again continues where it stopped. Memory holds the cut-outs, one background and one
batch of composites.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from maskdepth import fileio
from maskdepth.data.cutouts import SHARE_RANGE, list_images, load_background, load_cutout, paste, place
from maskdepth.data.folder_base import LAYOUT_FILE, PLAIN_DIRS, SEED_DIRS, SEED_PREFIXES
from maskdepth.data.geometry import DEPTH_CONVENTION
from maskdepth.errors import InputError
from maskdepth.imageio import save_image, save_png_u8, save_png_u16

MANIFEST = "manifest.json"
SETTINGS_FILE = "make_settings.json"  # in the partial folder: a resumed run must match it
MIRRORS = 2  # each place as the cut-out is and mirrored, as the seed did
JPEG_QUALITY = 95
ProgressFn = Callable[[int, int], None]


class Teacher(Protocol):
    """A depth source (:mod:`maskdepth.predict.teachers` has them); the manifest records its attributes."""

    name: str  # what it is, e.g. "transformers depth-anything/... (depth_anything, relative inverse depth)"
    licence: str  # the model card's licence line, or "unknown"
    normalisation: str  # how its output became the project's convention

    def __call__(self, pairs: Sequence[tuple[Image.Image, Image.Image]]) -> list[np.ndarray]:
        """(bg, composite) RGB images of one size -> one (H, W) float32 map in [0, 1] each, near = 1."""
        ...


OpenTeacher = Callable[[str], "Teacher | None"]  # the --depth text -> its teacher (None: no depth)


@dataclass(frozen=True)
class MakeSettings:
    """Everything that decides a made dataset's content (the manifest records it)."""

    backgrounds: str
    objects: str
    out: str
    positions: int = 20
    depth: str = "shipped"
    size: int = 224
    layout: str = "plain"
    seed: int = 0
    key_border: bool = False
    batch_size: int = 8

    def check(self) -> None:
        """InputError for a value that cannot work."""
        if self.positions < 1:
            raise InputError(f"--positions must be at least 1, got {self.positions}")
        if not 32 <= self.size <= 2048:
            raise InputError(f"--size must be between 32 and 2048 pixels, got {self.size}")
        if self.layout not in ("plain", "seed"):
            raise InputError(f"--layout must be plain or seed, got {self.layout!r}")
        if self.batch_size < 1:
            raise InputError(f"--batch-size must be at least 1, got {self.batch_size}")


@dataclass(frozen=True)
class MadeDataset:
    """What :func:`make_dataset` did: the folder, the sample count, how many this run wrote."""

    out: Path
    samples: int
    written: int
    depth: str


# ---------------------------------------------------------------- naming


class _Names:
    """File paths of sample ``i`` (0-based) in the chosen layout, inside ``root``."""

    def __init__(self, root: Path, layout: str, total: int, per_background: int, depth: bool) -> None:
        self.root, self.layout, self.per_background = root, layout, per_background
        self.width = max(5, len(str(total)))
        keys = ("bg", "fg_bg", "mask", "depth") if depth else ("bg", "fg_bg", "mask")
        self.keys = keys
        self.dirs = {k: root / (SEED_DIRS[k] if layout == "seed" else k) for k in keys}

    def paths(self, i: int) -> dict[str, Path]:
        if self.layout == "seed":
            n = i + 1
            paths = {k: self.dirs[k] / f"{SEED_PREFIXES[k]}{n}.jpg" for k in self.keys if k != "bg"}
            paths["bg"] = self.dirs["bg"] / f"{SEED_PREFIXES['bg']}{i // self.per_background + 1}.jpg"
            return paths
        return {k: self.dirs[k] / f"{i + 1:0{self.width}d}.png" for k in self.keys}

    def done(self, i: int) -> bool:
        return self.paths(i)["fg_bg"].is_file()  # written last


def _write_sample(names: _Names, i: int, bg: Image.Image, fg: Image.Image, mask: np.ndarray, depth) -> None:
    """One sample's files, each atomic; the composite last (it marks the sample written)."""
    paths = names.paths(i)
    if names.layout == "seed":
        if not paths["bg"].is_file():
            save_image(bg, paths["bg"], quality=JPEG_QUALITY)
        save_image(Image.fromarray(mask.astype(np.uint8) * 255), paths["mask"], quality=JPEG_QUALITY)
        if depth is not None:
            depth_u8 = np.rint(np.clip(depth, 0, 1) * 255).astype(np.uint8)
            save_image(Image.fromarray(depth_u8), paths["depth"], quality=JPEG_QUALITY)
        save_image(fg, paths["fg_bg"], quality=JPEG_QUALITY)
        return
    shared = names.root / ".backgrounds" / f"bg{i // names.per_background + 1}.png"
    if not shared.is_file():
        save_image(bg, shared)
    paths["bg"].unlink(missing_ok=True)
    try:  # one file per background on disk, however many samples name it
        os.link(shared, paths["bg"])
    except OSError:
        shutil.copyfile(shared, paths["bg"])
    save_png_u8(mask.astype(np.float32), paths["mask"])
    if depth is not None:
        save_png_u16(depth, paths["depth"])
    save_image(fg, paths["fg_bg"])


# ---------------------------------------------------------------- staging


def _partial_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


def _record(settings: MakeSettings, backgrounds: list[Path], objects: list[Path]) -> dict:
    """What a resumed run must share with the one it continues."""
    record = asdict(settings)
    del record["out"], record["batch_size"]  # neither changes a sample
    for key in ("backgrounds", "objects"):  # the same folders, from wherever the command runs
        record[key] = str(Path(record[key]).resolve())
    record["background_files"] = [p.name for p in backgrounds]
    record["object_files"] = [p.name for p in objects]
    return record


def _stage(out: Path, record: dict) -> Path:
    """The partial folder for ``out``: new, or a previous run's with the same settings."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out {out} already exists and is not empty: choose a new folder or delete it")
    partial = _partial_dir(out)
    settings_file = partial / SETTINGS_FILE
    if partial.is_dir():
        if fileio.read_json(settings_file) != record:
            raise InputError(
                f"{partial} holds an unfinished run with other settings or input files: run that command "
                "again to finish it, or delete the folder to start over"
            )
        return partial
    partial.mkdir(parents=True)
    fileio.write_json(settings_file, record)
    return partial


# ---------------------------------------------------------------- making


def make_dataset(
    settings: MakeSettings, open_teacher: OpenTeacher, on_progress: ProgressFn | None = None
) -> MadeDataset:
    """Make (or finish) the dataset ``settings`` describe; returns where it is and what was written.

    ``open_teacher(settings.depth)`` gives the depth source (``maskdepth.predict.teachers.open_teacher``),
    called once the inputs are checked and only if something is left to make. Raises InputError for
    unusable inputs before anything is written (every cut-out and background is read first; the
    teacher loads before the first sample).
    """
    settings.check()
    backgrounds = list_images(settings.backgrounds, "background photos", "--backgrounds")
    object_files = list_images(settings.objects, "cut-outs (RGBA PNGs)", "--objects")
    cutouts = [load_cutout(p, settings.size, settings.key_border) for p in object_files]
    for path in backgrounds:  # fail on a broken photo now, not hours in
        load_background(path, 32)
    n_obj, n_pos = len(cutouts), settings.positions
    per_background = n_obj * n_pos * MIRRORS
    total = len(backgrounds) * per_background
    out = Path(settings.out)
    record = _record(settings, backgrounds, object_files)
    if fileio.read_json(out / MANIFEST).get("settings") == record:  # made before: nothing left to do
        return MadeDataset(out, total, 0, settings.depth)
    teacher = open_teacher(settings.depth)
    partial = _stage(out, record)
    names = _Names(partial, settings.layout, total, per_background, depth=teacher is not None)
    for d in names.dirs.values():
        d.mkdir(exist_ok=True)
    (partial / ".backgrounds").mkdir(exist_ok=True)
    already = sum(names.done(i) for i in range(total))
    done = already
    if on_progress is not None:
        on_progress(done, total)
    for b, bg_path in enumerate(backgrounds):
        todo = [i for i in range(b * per_background, (b + 1) * per_background) if not names.done(i)]
        if not todo:
            continue
        bg = load_background(bg_path, settings.size)
        for k in range(0, len(todo), settings.batch_size):
            batch = []
            for i in todo[k : k + settings.batch_size]:
                o, rest = divmod(i - b * per_background, n_pos * MIRRORS)
                p, m = divmod(rest, MIRRORS)
                rng = np.random.default_rng([settings.seed, b, o, p])  # mirror twins share the place
                fg, mask = paste(bg, cutouts[o], place(cutouts[o].size, settings.size, rng), mirror=m == 1)
                batch.append((i, fg, mask))
            depths = teacher([(bg, fg) for _, fg, _ in batch]) if teacher is not None else [None] * len(batch)
            for (i, fg, mask), depth in zip(batch, depths, strict=True):
                _write_sample(names, i, bg, fg, mask, depth)
            done += len(batch)
            if on_progress is not None:
                on_progress(done, total)
    _finish(partial, out, settings, teacher, record, total, per_background)
    return MadeDataset(out, total, total - already, settings.depth)


def _finish(
    partial: Path,
    out: Path,
    settings: MakeSettings,
    teacher: Teacher | None,
    record: dict,
    total: int,
    per_background: int,
) -> None:
    """Write the manifest (and the seed layout's layout.json), drop the scratch files, rename into place."""
    if settings.layout == "seed":
        layout = {"layout": "seed", "per_background": per_background, "per_set": total}
        fileio.write_json(partial / LAYOUT_FILE, layout)
    depth = {"source": settings.depth}
    if teacher is None:
        depth["note"] = "masks only: no depth folder (training needs depth targets; see docs/your-photos.md)"
    else:
        depth |= {"teacher": teacher.name, "licence": teacher.licence, "convention": DEPTH_CONVENTION}
        depth["normalisation"] = teacher.normalisation
    manifest = {
        "made_by": "python -m maskdepth make-dataset",
        "layout": settings.layout,
        "folders": list(SEED_DIRS.values()) if settings.layout == "seed" else list(PLAIN_DIRS),
        "size": settings.size,
        "samples": total,
        "counts": {
            "backgrounds": len(record["background_files"]),
            "objects": len(record["object_files"]),
            "positions": settings.positions,
            "mirrors": MIRRORS,
        },
        "order": "sample i (0-based) = ((background * objects + object) * positions + position) * 2 + mirror",
        "sources": {
            "backgrounds": {"folder": record["backgrounds"], "files": record["background_files"]},
            "objects": {"folder": record["objects"], "files": record["object_files"]},
        },
        "seed": settings.seed,
        "placement": f"object's longer side a uniform share in {list(SHARE_RANGE)} of the background's side, "
        "anywhere it fits whole; rng = numpy default_rng([seed, background, object, position])",
        "key_border": settings.key_border,
        "depth": depth,
        "settings": record,  # a later run of the same command finds the dataset made
    }
    fileio.write_json(partial / MANIFEST, manifest)
    shutil.rmtree(partial / ".backgrounds", ignore_errors=True)  # the bg/ files hold their own links
    (partial / SETTINGS_FILE).unlink()
    if out.exists():
        out.rmdir()  # empty (checked when staging)
    os.replace(partial, out)

"""Extracting a user's dataset zip without trusting it (zip slip, symlinks, zip bombs).

Every entry is checked before anything is written; bytes are then counted while
streaming (headers can lie). Extraction goes to a hidden temp folder next to
``dest_dir`` and is renamed into place at the end, so a refused or broken zip leaves
nothing behind: ``dest_dir`` is only created on success.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from maskdepth.errors import DatasetError

GiB = 1024**3
# A seed set zip holds 3 x 80,000 images + 100 backgrounds (x2 with macOS "._" files).
MAX_FILES = 500_000
MAX_TOTAL_BYTES = 4 * GiB
MAX_RATIO = 200  # JPEG/PNG barely compress; x200 is a bomb, not a photo
RATIO_MIN_BYTES = 1024**2  # tiny files may compress well (a blank mask); only judge entries >= 1 MiB
_CHUNK = 1024**2
_DRIVE = re.compile(r"^[A-Za-z]:")
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    ValueError,
)


def _entry_parts(name: str, zip_path: Path) -> tuple[str, ...]:
    """Path parts of a zip entry name, or DatasetError if it could land outside the destination."""
    norm = name.replace("\\", "/")
    if "\x00" in norm or norm.startswith("/") or _DRIVE.match(norm) or ".." in norm.split("/"):
        raise DatasetError(
            f"{zip_path} contains an unsafe path {name!r} (absolute or with '..'): refusing to extract it; "
            "zip the dataset folder again from inside its parent folder"
        )
    return tuple(p for p in PurePosixPath(norm).parts if p not in ("", "."))


def _skipped(parts: tuple[str, ...]) -> bool:
    """macOS resource forks and dotfiles are not dataset files."""
    return any(p == "__MACOSX" or p.startswith(".") for p in parts)


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    """True when the entry's Unix mode (high 16 bits of external_attr) says symlink."""
    return stat.S_ISLNK(info.external_attr >> 16)


def safe_extract(
    zip_path: str | os.PathLike,
    dest_dir: str | os.PathLike,
    *,
    max_files: int = MAX_FILES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_ratio: float = MAX_RATIO,
) -> Path:
    """Extract ``zip_path`` into ``dest_dir`` (must not exist or be empty); returns the dataset folder.

    The returned folder is ``dest_dir`` itself, or its single top-level folder when the zip
    wraps everything in one (so ``open_folder_dataset`` finds the layout).
    """
    zip_path, dest = Path(zip_path), Path(dest_dir)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise DatasetError(
            f"{dest} already exists and is not an empty folder: choose a new folder or delete it"
        )
    try:
        zf = zipfile.ZipFile(zip_path)
    except FileNotFoundError as e:
        raise DatasetError(f"{zip_path} does not exist: check the path") from e
    except (OSError, *_ZIP_ERRORS) as e:
        raise DatasetError(
            f"{zip_path} is not a readable zip file ({e}): re-download it or zip it again"
        ) from e

    with zf:
        plan = _plan(zf, zip_path, max_files=max_files, max_total_bytes=max_total_bytes, max_ratio=max_ratio)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
        try:
            _write(zf, plan, tmp, zip_path, max_total_bytes=max_total_bytes, max_ratio=max_ratio)
            if dest.exists():
                dest.rmdir()  # empty (checked above); os.replace cannot replace a folder
            os.replace(tmp, dest)
        except BaseException:
            # Refused, corrupt, disk full or interrupted: leave nothing half-extracted.
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    children = list(dest.iterdir())
    if len(children) == 1 and children[0].is_dir():
        return children[0]
    return dest


def _plan(
    zf: zipfile.ZipFile, zip_path: Path, *, max_files: int, max_total_bytes: int, max_ratio: float
) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Check every entry from the central directory; returns the (entry, parts) to extract."""
    plan = []
    n_files = 0
    declared = 0
    for info in zf.infolist():
        parts = _entry_parts(info.filename, zip_path)  # checked even for entries we skip
        if _is_symlink(info):
            raise DatasetError(
                f"{zip_path} contains a symbolic link {info.filename!r}: refusing it; zip real files only"
            )
        if info.is_dir() or not parts:
            continue
        n_files += 1
        if n_files > max_files:
            raise DatasetError(
                f"{zip_path} holds more than {max_files:,} files: split the dataset into several zips "
                "or raise max_files"
            )
        if info.flag_bits & 0x1:
            raise DatasetError(
                f"{zip_path} is password-protected ({info.filename}): zip it without a password"
            )
        declared += info.file_size
        if declared > max_total_bytes:
            raise DatasetError(
                f"{zip_path} would extract to more than {max_total_bytes:,} bytes: "
                "use a smaller dataset or raise max_total_bytes"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= RATIO_MIN_BYTES and ratio > max_ratio:
            raise DatasetError(
                f"{zip_path}: entry {info.filename!r} expands {ratio:.0f}x "
                f"(limit {max_ratio:g}x), which looks like a zip bomb: refusing it"
            )
        if not _skipped(parts):
            plan.append((info, parts))
    if not plan:
        raise DatasetError(
            f"{zip_path} contains no files to extract: check that you zipped the dataset folder"
        )
    return plan


def _write(
    zf: zipfile.ZipFile,
    plan: list[tuple[zipfile.ZipInfo, tuple[str, ...]]],
    tmp: Path,
    zip_path: Path,
    *,
    max_total_bytes: int,
    max_ratio: float,
) -> None:
    """Stream the planned entries into ``tmp``, counting real bytes against the limits."""
    root = tmp.resolve()
    total = 0
    for info, parts in plan:
        target = tmp.joinpath(*parts)
        if not target.resolve().is_relative_to(root):  # defence in depth; names were checked already
            raise DatasetError(
                f"{zip_path} entry {info.filename!r} resolves outside the destination: refusing it"
            )
        written = 0
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "xb") as dst:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    total += len(chunk)
                    if written > info.file_size or total > max_total_bytes:
                        raise DatasetError(
                            f"{zip_path}: entry {info.filename!r} holds more bytes than its header says "
                            f"or the total passes {max_total_bytes:,} bytes: refusing this zip"
                        )
                    if written >= RATIO_MIN_BYTES and written > max_ratio * max(info.compress_size, 1):
                        raise DatasetError(
                            f"{zip_path}: entry {info.filename!r} expands more than {max_ratio:g}x, "
                            "which looks like a zip bomb: refusing it"
                        )
                    dst.write(chunk)
        except FileExistsError as e:
            raise DatasetError(
                f"{zip_path} holds {info.filename!r} twice (or as both a file and a folder): fix the zip"
            ) from e
        except _ZIP_ERRORS as e:
            raise DatasetError(
                f"{zip_path} is corrupt at {info.filename!r} ({e}): re-download it or zip again"
            ) from e
        except OSError as e:
            raise DatasetError(
                f"could not write {info.filename!r} from {zip_path} ({e}): check the disk space"
            ) from e

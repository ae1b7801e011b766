"""Files a test builds or inspects: tree snapshots, short writes, cut files, a hostile pickle."""

from __future__ import annotations

import os
import shlex
import zlib
from pathlib import Path
from typing import Any


def tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` -> 'dir', its link target, or its bytes' crc (a snapshot to diff)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = f"-> {os.readlink(p)}"
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = f"{zlib.crc32(p.read_bytes()):08x}"
    return out


def no_temp_files(folder: Path) -> list[str]:
    """Hidden or temporary files the atomic writers would leave if they failed (must be none)."""
    return [p.name for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def cut(path: Path, out: Path) -> Path:
    """The first half of ``path``'s bytes, written to ``out``: a file cut short."""
    data = path.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    return out


class RunsCode:
    """Unpickling this runs a shell command that creates ``marker`` (what a hostile checkpoint does)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)

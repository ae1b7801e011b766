"""Names on disk, stated once: which files are images, slugs for folder and file names, and
pairing each composite with the background of the same name.

The CLI (``predict`` on folders), the dataset readers, the app's batch predict and the run /
comparison folders all use these, so they agree on what "an image" and "the same name" mean.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import PurePath
from typing import TypeVar

from maskdepth.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

P = TypeVar("P", str, os.PathLike)


def is_image_name(name: str | os.PathLike) -> bool:
    """Whether a file name has one of :data:`IMAGE_SUFFIXES` (any case)."""
    return os.path.splitext(os.fspath(name))[1].lower() in IMAGE_SUFFIXES


def slug(text: str, *, keep: str = "._+-", max_len: int = 60, empty: str = "run") -> str:
    """``text`` as part of a file name: each run of characters other than ASCII letters, digits and
    ``keep`` becomes one ``-``; leading / trailing ``-`` and ``.`` are dropped; at most ``max_len``
    characters; ``empty`` if nothing is left. ``slug("bce|ssim try 1")`` is ``"bce-ssim-try-1"``.
    """
    text = re.sub(f"[^A-Za-z0-9{re.escape(keep)}]+", "-", text).strip("-.")
    return text[:max_len].rstrip("-.") or empty


def pair_by_name(composites: Sequence[P], backgrounds: Sequence[P], *, fix: str) -> list[tuple[P, P]]:
    """Each composite with the background of the same file name, the suffix ignored
    (``room1.jpg`` goes with ``room1.png``).

    Raises:
        InputError: some composites have no background of their name; the message names
            (up to five of) them and ends with ``fix``.
    """
    by_stem = {PurePath(b).stem: b for b in backgrounds}
    missing = [PurePath(c).name for c in composites if PurePath(c).stem not in by_stem]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InputError(f"no background named like {', '.join(missing[:5])}{more}: {fix}")
    return [(c, by_stem[PurePath(c).stem]) for c in composites]

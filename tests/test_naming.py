"""maskdepth.naming: image file names, slugs, and pairing composites with backgrounds by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from maskdepth.errors import InputError
from maskdepth.naming import IMAGE_SUFFIXES, is_image_name, pair_by_name, slug


def test_image_names_by_suffix_in_any_case() -> None:
    assert all(is_image_name(f"a{suffix}") for suffix in IMAGE_SUFFIXES)
    assert is_image_name("Room.JPG") and is_image_name(Path("x/y.tiff"))
    assert (
        not is_image_name("notes.txt") and not is_image_name("png") and not is_image_name("archive.png.zip")
    )


def test_slugs_are_file_name_safe() -> None:
    assert slug("bce|ssim try 1") == "bce-ssim-try-1"
    assert slug("bce+dice-ssim_v2.1") == "bce+dice-ssim_v2.1"  # kept: letters, digits, . _ + -
    assert slug("../../etc/passwd") == "etc-passwd"
    assert slug("x" * 100) == "x" * 60 and slug("   ") == "run" and slug("///", empty="variant") == "variant"
    # keep="" turns every other character into a dash (the comparison's folder and gallery names).
    assert slug("bce|ssim+bce", keep="") == "bce-ssim-bce" and slug("target mask", keep="") == "target-mask"


def test_pairs_match_names_without_suffix() -> None:
    pairs = pair_by_name(["in/room1.png", "in/room2.png"], ["bg/room2.jpg", "bg/room1.webp"], fix="rename")
    assert pairs == [("in/room1.png", "bg/room1.webp"), ("in/room2.png", "bg/room2.jpg")]
    with pytest.raises(InputError, match=r"no background named like a\.png, b\.png: name them alike"):
        pair_by_name(["a.png", "b.png", "c.png"], ["c.jpg"], fix="name them alike")
    with pytest.raises(InputError, match=r"and 2 more"):
        pair_by_name([f"{i}.png" for i in range(7)], [], fix="x")

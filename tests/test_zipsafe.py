"""maskdepth.data.zipsafe: hostile zips are refused and leave nothing behind; good ones open."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest
import torch

from maskdepth.data.export import export_plain_layout, export_seed_layout
from maskdepth.data.folder import PlainLayoutDataset, SeedLayoutDataset, open_folder_dataset
from maskdepth.data.zipsafe import _write, safe_extract
from maskdepth.errors import DatasetError


def _zip(path: Path, entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return path


def _refused(tmp_path: Path, zip_path: Path, match: str, **limits: int) -> None:
    """safe_extract raises, and tmp_path holds nothing but the zip afterwards."""
    with pytest.raises(DatasetError, match=match):
        safe_extract(zip_path, tmp_path / "dest", **limits)
    assert sorted(p.name for p in tmp_path.iterdir()) == [zip_path.name]


@pytest.mark.parametrize(
    "bad", ["../evil.txt", "ok/../../evil.txt", "/abs/evil.txt", "C:/evil.txt", "..\\evil.txt"]
)
def test_zip_slip_refused(tmp_path: Path, bad: str) -> None:
    z = _zip(tmp_path / "slip.zip", {"fine.txt": b"x", bad: b"pwned"})
    _refused(tmp_path, z, "unsafe path")
    assert not (tmp_path.parent / "evil.txt").exists() and not Path("/abs/evil.txt").exists()


def test_symlink_entry_refused(tmp_path: Path) -> None:
    z = tmp_path / "link.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("data/link")
        info.create_system = 3  # Unix
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    _refused(tmp_path, z, "symbolic link")


def test_too_many_files(tmp_path: Path) -> None:
    z = _zip(tmp_path / "many.zip", {f"f{i}.txt": b"x" for i in range(4)})
    _refused(tmp_path, z, "more than 3 files", max_files=3)


def test_too_many_declared_bytes(tmp_path: Path) -> None:
    z = _zip(tmp_path / "big.zip", {"a.bin": os.urandom(600), "b.bin": os.urandom(600)}, zipfile.ZIP_STORED)
    _refused(tmp_path, z, "more than 1,000 bytes", max_total_bytes=1000)


def test_header_lying_about_size(tmp_path: Path) -> None:
    z = _zip(tmp_path / "liar.zip", {"a.bin": os.urandom(2000)}, zipfile.ZIP_STORED)
    raw = bytearray(z.read_bytes())
    cd = raw.index(b"PK\x01\x02")
    raw[cd + 24 : cd + 28] = (100).to_bytes(4, "little")  # central directory: "uncompressed size 100"
    z.write_bytes(bytes(raw))
    assert zipfile.ZipFile(z).getinfo("a.bin").file_size == 100  # the lie passes the declared check
    _refused(tmp_path, z, "a.bin", max_total_bytes=1000)


def test_ratio_bomb(tmp_path: Path) -> None:
    z = _zip(tmp_path / "bomb.zip", {"zeros.bin": bytes(2 * 1024**2)})
    _refused(tmp_path, z, "zip bomb")


def test_not_a_zip_and_truncated_zip(tmp_path: Path) -> None:
    txt = tmp_path / "data.zip"
    txt.write_text("I am not a zip")
    _refused(tmp_path, txt, "not a readable zip")
    txt.unlink()
    good = _zip(tmp_path / "cut.zip", {f"f{i}.bin": os.urandom(3000) for i in range(3)})
    good.write_bytes(good.read_bytes()[:4000])
    _refused(tmp_path, good, "zip")


def test_dest_must_be_new_or_empty(tmp_path: Path) -> None:
    z = _zip(tmp_path / "ok.zip", {"a.txt": b"a"})
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "old.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not an empty folder"):
        safe_extract(z, tmp_path / "dest")
    assert (tmp_path / "dest" / "old.txt").read_text() == "keep me"


class _Tiny(torch.utils.data.Dataset):
    """Three flat 16x16 samples with a square mask."""

    def __len__(self) -> int:
        return 3

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        mask = torch.zeros(1, 16, 16)
        mask[:, 4:12, 4:12] = 1
        bg = torch.full((3, 16, 16), 0.2 + 0.1 * i)
        return {"bg": bg, "fg_bg": bg * (1 - mask) + 0.9 * mask, "mask": mask, "depth": 0.3 + 0.5 * mask}


def _zip_folder(folder: Path, z: Path, top: str | None) -> Path:
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            rel = p.relative_to(folder).as_posix()
            zf.write(p, f"{top}/{rel}" if top else rel)
        zf.writestr("__MACOSX/._junk", b"mac")  # skipped
        zf.writestr(f"{top}/.DS_Store" if top else ".DS_Store", b"mac")  # skipped
    return z


def test_seed_layout_zip_with_top_folder(tmp_path: Path) -> None:
    src = export_seed_layout(_Tiny(), tmp_path / "src")
    z = _zip_folder(src, tmp_path / "set.zip", top="myset")
    root = safe_extract(z, tmp_path / "extracted")
    assert root == tmp_path / "extracted" / "myset"
    assert not (tmp_path / "extracted" / "__MACOSX").exists() and not (root / ".DS_Store").exists()
    ds = open_folder_dataset(root, size=16)
    assert isinstance(ds, SeedLayoutDataset) and len(ds) == 3
    assert torch.equal(ds[1]["mask"], _Tiny()[1]["mask"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # temp folder renamed away


def test_plain_layout_zip_at_root(tmp_path: Path) -> None:
    src = export_plain_layout(_Tiny(), tmp_path / "src")
    root = safe_extract(_zip_folder(src, tmp_path / "plain.zip", top=None), tmp_path / "extracted")
    assert root == tmp_path / "extracted"
    ds = open_folder_dataset(root, size=16)
    assert isinstance(ds, PlainLayoutDataset) and len(ds) == 3


def test_streaming_count_catches_more_bytes_than_declared(tmp_path: Path) -> None:
    # CPython's zipfile never returns more than the header says; this guards other readers.
    class _Lying:
        def open(self, info: zipfile.ZipInfo) -> io.BytesIO:
            return io.BytesIO(bytes(5000))

    info = zipfile.ZipInfo("a.bin")
    info.file_size, info.compress_size = 100, 100
    with pytest.raises(DatasetError, match="more bytes than its header says"):
        _write(_Lying(), [(info, ("a.bin",))], tmp_path, Path("x.zip"), max_total_bytes=10_000, max_ratio=200)

"""Hardening (issue 5), dataset zips through the Train tab's upload path (``maskdepth.data.zipsafe``).

Every hostile or broken zip is refused with a message, on a Space and locally, and writes nothing
outside the app's data folder (inside it: at most empty folders); a good zip still trains.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from support.files import tree, write_text
from support.ui import AppContext, gr_message, gradio_errors, make_ctx, tiny_controls, train_tab

from maskdepth.data.export import export_plain_layout, export_seed_layout
from maskdepth.data.synthetic import SyntheticScenes

pytestmark = pytest.mark.usefixtures("training_slot_free")


def _zip_entries(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def _zip_folder(path: Path, folder: Path, drop: Callable[[str], bool] = lambda rel: False) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(folder.rglob("*")):
            rel = str(f.relative_to(folder))
            if f.is_file() and not drop(rel):
                zf.write(f, f"dataset/{rel}")
    return path


def _symlink_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("dataset/fg_bg/1.png", b"x")
        info = zipfile.ZipInfo("dataset/bg/1.png")
        info.create_system = 3  # Unix, so the mode bits below are read
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    return path


def _plain(folder: Path) -> Path:
    return export_plain_layout(SyntheticScenes(2, 2, 2, size=32), folder / "plain-src", 6)


def _seed(folder: Path) -> Path:
    return export_seed_layout(SyntheticScenes(2, 2, 2, size=32), folder / "seed-src", 6)


# name -> (builder(folder) -> zip, what the message must say, app limits)
BAD_ZIPS: dict[str, tuple[Callable[[Path], Path], str, dict[str, int]]] = {
    "zip-slip-dotdot": (
        lambda d: _zip_entries(d / "z.zip", {"dataset/x.txt": b"x", "../../../../evil.txt": b"pwned"}),
        "unsafe path",
        {},
    ),
    "zip-slip-nested": (
        lambda d: _zip_entries(d / "z.zip", {"dataset/../../../../../evil.txt": b"pwned"}),
        "unsafe path",
        {},
    ),
    "absolute-path": (
        lambda d: _zip_entries(d / "z.zip", {str(d / "evil-abs.txt"): b"pwned"}),
        "unsafe path",
        {},
    ),
    "windows-drive": (lambda d: _zip_entries(d / "z.zip", {"C:/evil.txt": b"pwned"}), "unsafe path", {}),
    "symlink-entry": (lambda d: _symlink_zip(d / "z.zip"), "symbolic link", {}),
    "too-many-files": (
        lambda d: _zip_entries(d / "z.zip", {f"dataset/f{i}.png": b"x" for i in range(12)}),
        "more than 5 files",
        {"upload_max_files": 5},
    ),
    "too-many-bytes": (
        lambda d: _zip_entries(d / "z.zip", {f"dataset/f{i}.bin": os.urandom(1500) for i in range(3)}),
        "more than 2,000 bytes",
        {"upload_max_bytes": 2000},
    ),
    "ratio-bomb": (
        lambda d: _zip_entries(d / "z.zip", {"dataset/zeros.png": bytes(3 * 1024**2)}),
        "zip bomb",
        {},
    ),
    "not-a-zip": (lambda d: write_text(d / "z.zip", "I am a text file"), "not a readable zip", {}),
    "empty-zip": (lambda d: _zip_entries(d / "z.zip", {}), "contains no files", {}),
    "no-dataset-inside": (
        lambda d: _zip_entries(d / "z.zip", {"holiday/beach.txt": b"sand"}),
        "not a dataset folder",
        {},
    ),
    "missing-folder": (
        lambda d: _zip_folder(d / "z.zip", _plain(d), drop=lambda rel: rel.startswith("depth/")),
        "missing the folder(s) depth",
        {},
    ),
    "mismatched-counts": (
        lambda d: _zip_folder(
            d / "z.zip", _plain(d), drop=lambda rel: rel.startswith("mask/") and "3" in rel
        ),
        "file counts differ",
        {},
    ),
    "seed-layout-missing-backgrounds": (
        lambda d: _zip_folder(d / "z.zip", _seed(d), drop=lambda rel: Path(rel).name.startswith("bg")),
        "backgrounds are missing",
        {},
    ),
}


@pytest.mark.parametrize("on_space", [True, False], ids=["space", "local"])
@pytest.mark.parametrize("case", list(BAD_ZIPS))
def test_bad_dataset_zip_is_refused_and_writes_nothing(
    tmp_path: Path, shipped: Path, case: str, on_space: bool
) -> None:
    build, needle, limits = BAD_ZIPS[case]
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    archive = build(uploads)
    ctx = make_ctx(tmp_path / "app", shipped, on_space=on_space)
    for name, value in limits.items():
        setattr(ctx, name, value)
    ctx.data_dir.parent.mkdir()  # the app's own folder exists; its data folder is made on the first upload
    before = tree(tmp_path)
    stream = gradio_errors(train_tab.train_stream)(
        ctx, "me", dataset_kind="zip upload", zip_file=str(archive), folder=None, **tiny_controls()
    )
    message = gr_message(lambda: stream)
    assert needle in message, message
    after = tree(tmp_path)
    data = str(ctx.data_dir.relative_to(tmp_path))
    # Outside the app's data folder: not a byte changed. Inside it: at most empty folders.
    assert {k: v for k, v in after.items() if not k.startswith(data)} == before
    assert all(v == "dir" for k, v in after.items() if k.startswith(data)), after
    assert not (tmp_path.parent / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not ctx.runs_dir.exists()  # no run folder for a run that never started


def test_a_good_dataset_zip_still_trains(tmp_path: Path, ctx: AppContext) -> None:
    archive = _zip_folder(tmp_path / "good.zip", _plain(tmp_path))
    *_, (_, status, *_) = gradio_errors(train_tab.train_stream)(
        ctx, "me", dataset_kind="zip upload", zip_file=str(archive), folder=None, **tiny_controls(budget=1)
    )
    assert "finished after 1 steps" in status

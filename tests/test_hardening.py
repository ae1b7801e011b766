"""Hardening (issue 5): every way in holds. Bad input and faults end in a message, never a traceback.

Ways in: the app's handlers (called directly, and the launched app through ``gradio_client``),
the CLI (``maskdepth.__main__.main`` in-process) and the loaders behind them. Each section tries
every kind of bad input it names and checks the answer: a ``gr.Error`` / warning in the app, one
``error:`` line and exit code 2 on the CLI, nothing written where it must not be, the last good
checkpoint intact. Models are WNet(base_width=4) at 32 px; training runs are a few steps on 16
synthetic samples; one torch thread.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import logging
import os
import pickle
import re
import socket
import stat
import struct
import threading
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from tiny import tiny_config, tiny_model, tiny_train_controls, torch_threads, write_image

import maskdepth
import maskdepth.checkpoint as hub_mod
import maskdepth.evaluate as evaluate_mod
import maskdepth.run_writer as run_writer_mod
import maskdepth.train as train_mod
from maskdepth import fileio
from maskdepth.__main__ import main as cli
from maskdepth.checkpoint import save_model
from maskdepth.data.export import export_plain_layout, export_seed_layout
from maskdepth.data.synthetic import SyntheticScenes
from maskdepth.errors import InputError, TrainingError
from maskdepth.model import MAX_BASE_WIDTH, WNet
from maskdepth.train import DoneEvent, EvalEvent
from maskdepth.ui import compare_tab, context, models_tab, predict_tab, train_tab
from maskdepth.ui.context import DEFAULT_CHOICE, AppContext
from maskdepth.ui.errors import gradio_errors
from maskdepth.ui.jobs import TRAIN_CONCURRENCY, TRAINING
from maskdepth.ui.outputs import OutputDirs
from maskdepth.ui.predictors import PREDICT_CONCURRENCY

ROOT = Path(__file__).resolve().parent.parent
FAKE_TOKEN = "hf_FAKEtoken1234567890abcdef"


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with torch_threads(1):
        yield


@pytest.fixture(autouse=True)
def _slot_is_free() -> Iterator[None]:
    """No test may leave the process-wide training slot taken."""
    yield
    deadline = time.monotonic() + 20
    while TRAINING.busy and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not TRAINING.busy, "a test left the training slot taken"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app's 'shipped' model: a tiny 6-channel W-Net trained at 32 px."""
    return save_model(tiny_model(), tmp_path_factory.mktemp("shipped") / "checkpoints")


def make_ctx(root: Path, checkpoints: Path, *, on_space: bool = False) -> AppContext:
    """An app context whose every folder (runs, data, outputs) is under ``root``."""
    ctx = context.make_context(
        checkpoints,
        root / "runs",
        data_dir=root / "data",
        comparison_dir=root / "comparison",
        examples_dir=root / "examples",
        on_space=on_space,
    )
    ctx.outputs = OutputDirs(root / "outputs")
    return ctx


@pytest.fixture
def ctx(tmp_path: Path, shipped: Path) -> AppContext:
    return make_ctx(tmp_path / "app", shipped)


def gr_message(call: Callable[[], Any]) -> str:
    """The message a user sees when ``call`` (a handler) fails: it must be a gr.Error of one line."""
    with pytest.raises(gr.Error) as shown:
        result = call()
        if isinstance(result, Iterator):
            list(result)
    message = shown.value.message
    assert "Traceback" not in message and "\n" not in message.strip(), message
    return message


def cli_error(args: list[str], capsys: pytest.CaptureFixture, *, progress: bool = False) -> str:
    """Run the CLI in-process; it must exit 2 with exactly one ``error:`` line on stderr.

    With ``progress``, the lines of a progress bar drawn before the failure may precede it.
    """
    capsys.readouterr()
    code = cli(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = [line for line in err.splitlines() if "error" in line] if progress else err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def tiny_controls(**overrides: Any) -> dict[str, Any]:
    """The Train tab's controls for a short run on 16 synthetic 32 px samples."""
    return tiny_train_controls(
        **{"budget": 2, "eval_every": 1, "eval_samples": 4, "sample_every": 0, **overrides}
    )


def train_stream(ctx: AppContext, owner: str = "me", **overrides: Any) -> Iterator[tuple[Any, ...]]:
    """The Train tab's handler on the synthetic dataset, as the Start button calls it (errors wrapped)."""
    return gradio_errors(train_tab.train_stream)(
        ctx, owner, dataset_kind="synthetic", zip_file=None, folder=None, **tiny_controls(**overrides)
    )


def no_temp_files(folder: Path) -> list[str]:
    """Hidden or temporary files the atomic writers would leave if they failed (must be none)."""
    return [p.name for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


# ================================================================================================
# 1. Uploads: the Predict tab's handlers and `predict` on the CLI
# ================================================================================================


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, side: int = 10_000) -> Path:
    """A real, valid grey PNG of ``side`` x ``side`` pixels (100 MB decoded) in ~100 kB: zeros compress well."""
    z = zlib.compressobj(6)
    rows = (b"\x00" * (side + 1)) * 100  # filter byte 0 + a row of black pixels, 100 rows at a time
    idat = b"".join(z.compress(rows) for _ in range(side // 100)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
    path.write_bytes(png)
    return path


def _noise(mode: str, size: tuple[int, int] = (40, 30), seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    if mode == "L":
        return Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8))
    if mode == "RGBA":
        return Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8))
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode)


def _save(img: Image.Image, path: Path, **params: Any) -> Path:
    img.save(path, **params)
    return path


def _cut(path: Path, out: Path) -> Path:
    data = path.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    return out


def _corrupt_idat(folder: Path) -> Path:
    """A PNG whose header is fine but whose compressed pixels are garbage."""
    data = bytearray(_save(_noise("RGB", (64, 64)), folder / "ok-big.png").read_bytes())
    start = data.index(b"IDAT") + 4
    data[start + 2 : start + 400] = bytes(range(256)) + bytes(142)
    (folder / "corrupt.png").write_bytes(bytes(data))
    return folder / "corrupt.png"


# name -> (builder(folder) -> file, what the message must say)
BAD_UPLOADS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "text-file": (lambda d: _write_text(d / "notes.png", "meeting notes, not a photo"), "not an image"),
    "empty-file": (lambda d: _write_text(d / "empty.jpg", ""), "not an image"),
    "truncated-png": (
        lambda d: _cut(_save(_noise("RGB"), d / "full.png"), d / "cut.png"),
        "truncated or corrupt",
    ),
    "truncated-jpeg": (
        lambda d: _cut(_save(_noise("RGB"), d / "full.jpg", quality=90), d / "cut.jpg"),
        "truncated or corrupt",
    ),
    "corrupt-pixels": (_corrupt_idat, "truncated or corrupt"),
    "garbage-after-png-signature": (
        lambda d: _write_bytes(d / "garbage.png", b"\x89PNG\r\n\x1a\n" + os.urandom(2000)),
        "not an image",
    ),
    "1x1": (lambda d: _save(Image.new("RGB", (1, 1)), d / "dot.png"), "too small"),
    "bomb-10000x10000": (lambda d: bomb_png(d / "bomb.png"), "too large"),
}


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _exif_rotated(folder: Path) -> Path:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display; stored 40x30, shown 30x40
    return _save(_noise("RGB", seed=3), folder / "phone.jpg", exif=exif.tobytes())


# name -> (builder(folder) -> (composite, background), output size, a note about resizing expected)
GOOD_UPLOADS: dict[str, tuple[Callable[[Path], tuple[Path, Path]], tuple[int, int], bool]] = {
    "grayscale": (lambda d: (_save(_noise("L"), d / "g.png"), _bg(d)), (40, 30), False),
    "rgba": (lambda d: (_save(_noise("RGBA"), d / "a.png"), _bg(d)), (40, 30), False),
    "16-bit": (lambda d: (_save(_noise("I;16"), d / "i16.png"), _bg(d)), (40, 30), False),
    "palette": (lambda d: (_save(_noise("P"), d / "p.png"), _bg(d)), (40, 30), False),
    "cmyk-jpeg": (lambda d: (_save(_noise("CMYK"), d / "k.jpg"), _bg(d)), (40, 30), False),
    "smallest-8x8": (lambda d: (_save(_noise("RGB", (8, 8)), d / "s.png"), _bg(d, (8, 8))), (8, 8), False),
    "exif-rotated": (lambda d: (_exif_rotated(d), _bg(d, (30, 40))), (30, 40), False),
    "mismatched-bg-size": (lambda d: (_save(_noise("RGB"), d / "c.png"), _bg(d, (64, 50))), (40, 30), True),
}


def _bg(folder: Path, size: tuple[int, int] = (40, 30)) -> Path:
    return write_image(folder / f"bg-{size[0]}x{size[1]}.png", *size, seed=9)


@pytest.mark.parametrize("role", ["composite", "background"])
@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_upload_is_a_message_in_the_app(ctx: AppContext, tmp_path: Path, case: str, role: str) -> None:
    build, needle = BAD_UPLOADS[case]
    bad, good = build(tmp_path), _bg(tmp_path)
    bg, fg = (good, bad) if role == "composite" else (bad, good)
    start = time.perf_counter()
    message = gr_message(
        lambda: gradio_errors(predict_tab.predict)(str(bg), str(fg), DEFAULT_CHOICE, ctx=ctx)
    )
    assert needle in message and bad.name in message
    assert ("composite image (fg_bg)" if role == "composite" else "background image (bg)") in message
    assert time.perf_counter() - start < 5  # the bomb is refused from its header, never decoded


def test_bad_uploads_in_a_batch_are_skipped_and_named(ctx: AppContext, tmp_path: Path) -> None:
    bads = [build(tmp_path) for build, _ in BAD_UPLOADS.values()]
    good = write_image(tmp_path / "good.png", 40, 30, seed=1)
    message = gr_message(
        lambda: gradio_errors(predict_tab.predict_batch)(
            [str(p) for p in bads], [str(_bg(tmp_path))], ctx=ctx
        )
    )
    assert "no composite could be read" in message
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        zip_path, summary = predict_tab.predict_batch(
            [str(good), *map(str, bads)], [str(_bg(tmp_path))], DEFAULT_CHOICE, ctx=ctx
        )
    assert f"1 of {len(bads) + 1}" in summary and all(p.name in summary for p in bads)
    assert any("could not be read" in str(w.message) for w in caught)
    with zipfile.ZipFile(zip_path) as zf:
        assert {n.split("/")[0] for n in zf.namelist()} == {"README.txt", "good"}


@pytest.mark.parametrize("case", list(GOOD_UPLOADS))
def test_any_image_mode_predicts_at_its_displayed_size_in_the_app(
    ctx: AppContext, tmp_path: Path, case: str
) -> None:
    build, size, note = GOOD_UPLOADS[case]
    fg, bg = build(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outputs = predict_tab.predict(str(bg), str(fg), DEFAULT_CHOICE, ctx=ctx)
    overlay, color, (before, _), *files = outputs
    for path in (overlay, color, before, *files):
        with Image.open(path) as img:
            assert img.size == size, (case, path)
    notes = [str(w.message) for w in caught if "resized" in str(w.message)]  # gr.Warning outside a request
    assert bool(notes) == note, notes


@pytest.mark.parametrize("role", ["composite", "background"])
@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_upload_is_one_line_and_exit_2_on_the_cli(
    shipped: Path, tmp_path: Path, capsys: pytest.CaptureFixture, case: str, role: str
) -> None:
    build, needle = BAD_UPLOADS[case]
    bad, good = build(tmp_path), _bg(tmp_path)
    fg, bg = (bad, good) if role == "composite" else (good, bad)
    out = tmp_path / "out"
    line = cli_error(
        ["predict", "--model", str(shipped), "--image", str(fg), "--bg", str(bg), "--out", str(out)], capsys
    )
    assert needle in line and bad.name in line
    assert not out.exists()  # nothing half-written


@pytest.mark.parametrize("case", list(GOOD_UPLOADS))
def test_any_image_mode_predicts_on_the_cli(
    shipped: Path, tmp_path: Path, capsys: pytest.CaptureFixture, case: str
) -> None:
    build, size, note = GOOD_UPLOADS[case]
    fg, bg = build(tmp_path)
    code = cli(
        [
            "predict",
            "--model",
            str(shipped),
            "--image",
            str(fg),
            "--bg",
            str(bg),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    for name in ("mask.png", "depth.png", "depth16.png", "depth_color.png"):
        with Image.open(tmp_path / "o" / name) as img:
            assert img.size == size
    assert ("note (" in err and "resized" in err) == note


def test_cli_output_folder_that_cannot_be_written(
    shipped: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    image, blocker = write_image(tmp_path / "c.png", 40, 30), _write_text(tmp_path / "a-file", "x")
    line = cli_error(
        [
            "predict",
            "--model",
            str(shipped),
            "--image",
            str(image),
            "--bg",
            str(image),
            "--out",
            str(blocker),
        ],
        capsys,
    )
    assert "cannot write the outputs into" in line and "a-file" in line


TINY_TRAIN = ["--backgrounds", "2", "--foregrounds", "2", "--positions", "2", "--size", "32", "--base-width", "4",
              "--batch-size", "4", "--eval-samples", "4", "--steps", "1"]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["export-data", "-n", "2", "--size", "32", "--out", "{file}/sub"], "File exists", id="export-under-a-file"),
        pytest.param(["compare", *TINY_TRAIN, "--variants", "bce|bce", "--out", "{file}"], "File exists", id="compare-onto-a-file"),
        pytest.param(["train", *TINY_TRAIN, "--dataset", "{tmp}/nowhere", "--out", "{tmp}/runs/x"], "is not a folder", id="train-missing-dataset"),
        pytest.param(["train", *TINY_TRAIN, "--resume", "{file}", "--out", "{tmp}/runs/x"], "not a PyTorch checkpoint", id="train-resume-garbage"),
        pytest.param(["train", *TINY_TRAIN, "--resume", "{tmp}/broken-run", "--out", "{tmp}/runs/x"], "last.pt to resume", id="train-resume-broken-last.pt"),
        pytest.param(["evaluate", "--model", "{file}", "--steps", "1"], "not a PyTorch checkpoint", id="evaluate-garbage"),
        pytest.param(["save", "{file}", "--out", "{tmp}/saved"], "not a PyTorch checkpoint", id="save-garbage"),
        pytest.param(["pull", "bad..id", "--out", "{tmp}/pulled"], "not a Hub repo id", id="pull-bad-id"),
        pytest.param(["push", "{tmp}/nowhere", "alice/wnet"], "No Hugging Face token", id="push-without-token"),
    ],
)  # fmt: skip
def test_other_cli_commands_fail_in_one_line_and_leave_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], needle: str
) -> None:
    blocker = _write_text(tmp_path / "a-file", "not a folder, not a checkpoint")
    (tmp_path / "broken-run").mkdir()
    _write_text(tmp_path / "broken-run" / "last.pt", "cut short")
    before = _tree(tmp_path)
    line = cli_error([a.format(file=blocker, tmp=tmp_path) for a in args], capsys, progress=True)
    assert needle in line, line
    made = {"runs": "dir"} if "{tmp}/runs/x" in args else {}  # the parent of --out; no half-made run in it
    assert _tree(tmp_path) == before | made


# ================================================================================================
# 2. Dataset zips through the Train tab's upload path
# ================================================================================================


def _tree(root: Path) -> dict[str, str]:
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
    "not-a-zip": (lambda d: _write_text(d / "z.zip", "I am a text file"), "not a readable zip", {}),
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
    before = _tree(tmp_path)
    stream = gradio_errors(train_tab.train_stream)(
        ctx, "me", dataset_kind="zip upload", zip_file=str(archive), folder=None, **tiny_controls()
    )
    message = gr_message(lambda: stream)
    assert needle in message, message
    after = _tree(tmp_path)
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


# ================================================================================================
# 3. Checkpoints through the app's model picker and the CLI's --model
# ================================================================================================


class RunsCode:
    """Unpickling this runs a shell command that creates ``marker`` (what a hostile checkpoint does)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def _folder_with_config(folder: Path, config: Any) -> Path:
    save_model(tiny_model(), folder)
    (folder / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    return folder


def _pickle_pt(folder: Path) -> Path:
    torch.save({"model_state_dict": RunsCode(folder / "pwned"), "epoch": 1}, folder / "evil.pt")
    return folder / "evil.pt"


def _pickle_pkl(folder: Path) -> Path:
    with open(folder / "evil.pkl", "wb") as f:
        pickle.dump({"model_state_dict": RunsCode(folder / "pwned")}, f)
    return folder / "evil.pkl"


def _truncated_pt(folder: Path) -> Path:
    torch.save({"model_state_dict": tiny_model().state_dict()}, folder / "full.pt")
    return _cut(folder / "full.pt", folder / "cut.pt")


def _truncated_safetensors(folder: Path) -> Path:
    model = save_model(tiny_model(), folder / "cut-model")
    _cut(model / "model.safetensors", model / "model.safetensors.part").replace(model / "model.safetensors")
    return model


def _other_architecture(folder: Path) -> Path:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 2, 1))
    torch.save(net.state_dict(), folder / "segmenter.pth")
    return folder / "segmenter.pth"


def _other_width(folder: Path) -> Path:
    model = save_model(WNet(base_width=8, image_size=32), folder / "w8")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "base_width": 4}))
    return model


def _stem_claims_huge_width(folder: Path) -> Path:
    torch.save({"inc.double_conv.0.weight": torch.zeros(4096, 6, 3, 3)}, folder / "huge.pt")
    return folder / "huge.pt"


def _config_only(folder: Path) -> Path:
    (folder / "cfg-only").mkdir()
    (folder / "cfg-only" / "config.json").write_text('{"in_channels": 6}')
    return folder / "cfg-only"


# name -> (builder(folder) -> source, what the message must say)
BAD_CHECKPOINTS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "pickle-that-runs-code.pt": (_pickle_pt, "Refusing to load"),
    "pickle-that-runs-code.pkl": (_pickle_pkl, "torch.load(weights_only=True)"),
    "truncated.pt": (_truncated_pt, "truncated or not a PyTorch checkpoint"),
    "empty.pt": (lambda d: _write_bytes(d / "empty.pt", b""), "not a PyTorch checkpoint"),
    "truncated-safetensors": (_truncated_safetensors, "truncated or not a safetensors file"),
    "other-architecture": (_other_architecture, "does not hold W-Net weights"),
    "other-width": (_other_width, "look like in_channels=6, base_width=8"),
    "config-in_channels-5": (
        lambda d: _folder_with_config(d / "m", {"in_channels": 5}),
        "'in_channels' is 5",
    ),
    "config-image_size-string": (
        lambda d: _folder_with_config(d / "m", {"in_channels": 6, "base_width": 4, "image_size": "64"}),
        "'image_size' is '64'",
    ),
    "config-not-json": (lambda d: _folder_with_config(d / "m", "{oops"), "not valid JSON"),
    "config-a-list": (lambda d: _folder_with_config(d / "m", "[6, 4]"), "must be a JSON object"),
    "config-huge-base_width": (
        lambda d: _folder_with_config(d / "m", {"in_channels": 6, "base_width": 4096}),
        f"'base_width' is 4096, but must be an even integer in [2, {MAX_BASE_WIDTH}]",
    ),
    "config-huge-image_size": (
        lambda d: _folder_with_config(d / "m", {"in_channels": 6, "base_width": 4, "image_size": 10**6}),
        "'image_size' is 1000000",
    ),
    "stem-claims-width-4096": (_stem_claims_huge_width, "base width 4096"),
    "config-without-weights": (_config_only, "has no model.safetensors"),
}


@pytest.mark.parametrize("case", list(BAD_CHECKPOINTS))
def test_bad_checkpoint_is_named_in_the_app_and_on_the_cli(
    ctx: AppContext, tmp_path: Path, capsys: pytest.CaptureFixture, case: str
) -> None:
    build, needle = BAD_CHECKPOINTS[case]
    source = build(tmp_path)
    image = write_image(tmp_path / "c.png", 40, 30)
    start = time.perf_counter()
    message = gr_message(
        lambda: gradio_errors(predict_tab.predict)(str(image), str(image), str(source), ctx=ctx)
    )
    assert needle in message, message
    info, _ = predict_tab.model_info(str(source), ctx=ctx)  # picking the model: an inline note, not a pop-up
    assert info.startswith("⚠️") and needle in info
    line = cli_error(
        [
            "predict",
            "--model",
            str(source),
            "--image",
            str(image),
            "--bg",
            str(image),
            "--out",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert needle in line
    assert time.perf_counter() - start < 10  # a huge config is refused, never allocated
    assert not (tmp_path / "pwned").exists()  # the pickles' payload never ran


# ================================================================================================
# 4. Training faults
# ================================================================================================


def test_stop_during_a_checkpoint_write_keeps_a_complete_file(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = hub_mod.save_file
    writing = threading.Event()
    answers: list[str] = []

    def slow_save(state: dict, path: str, *args: Any, **kwargs: Any) -> None:
        writing.set()
        time.sleep(0.3)  # Stop is pressed, twice, while the weights are being written
        real_save(state, path, *args, **kwargs)

    def press_stop_twice() -> None:
        writing.wait(60)
        answers.append(TRAINING.request_stop("me"))
        answers.append(TRAINING.request_stop("me"))

    monkeypatch.setattr(hub_mod, "save_file", slow_save)
    presser = threading.Thread(target=press_stop_twice)
    presser.start()
    *_, (_, status, *_) = train_stream(ctx, budget=1000, run_name="stopped")
    presser.join()
    assert len(answers) == 2 and all(a.startswith("stopping the training") for a in answers), answers
    assert "stopped after" in status
    assert TRAINING.request_stop("me") == "nothing is running"  # and once more after the end: harmless
    run = next(r.path for r in ctx.runs() if r.name.endswith("-stopped"))
    model = maskdepth.load_model(run)
    assert set(load_file(str(run / "model.safetensors"))) == set(model.state_dict())
    assert (run / "last.pt").is_file() and no_temp_files(run) == []


def test_crash_mid_epoch_keeps_the_best_checkpoint(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    real = train_mod.score_batch
    calls = {"n": 0}
    saved: list[bytes] = []
    real_save_weights = run_writer_mod.save_weights

    def crash_on_third_step(output: Any, batch: Any, cfg: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash in the training loop")
        return real(output, batch, cfg)

    def recording_save(model: WNet, folder: Path) -> None:
        real_save_weights(model, folder)
        saved.append((folder / "model.safetensors").read_bytes())

    monkeypatch.setattr(train_mod, "score_batch", crash_on_third_step)
    monkeypatch.setattr(run_writer_mod, "save_weights", recording_save)
    message = gr_message(lambda: train_stream(ctx, budget=10, run_name="crashed"))
    assert "went wrong" in message and "simulated" not in message  # details stay in the server log
    run = next(p for p in ctx.runs_dir.iterdir() if p.name.endswith("-crashed"))
    assert saved and (run / "model.safetensors").read_bytes() == saved[-1]
    assert maskdepth.load_model(run).base_width == 4
    assert no_temp_files(run) == []
    # Recovered: a new run resumes from the crashed run's best weights.
    monkeypatch.setattr(train_mod, "score_batch", real)
    *_, (_, status, *_) = train_stream(ctx, budget=1, resume=run.name, run_name="recovered")
    assert "finished after 1 steps" in status


def test_nan_loss_in_the_app_is_a_warning_not_a_crash(ctx: AppContext) -> None:
    with pytest.warns(UserWarning, match="lower the learning rate"):
        *_, (html, status, *_) = train_stream(ctx, lr=1e30, budget=6, run_name="nan")
    assert "NaN" in html and "the loss became" in status
    # The message says truly whether weights were kept: only finite ones ever are.
    run = next(p for p in ctx.runs_dir.iterdir() if p.name.endswith("-nan"))
    saved = (run / "model.safetensors").is_file()
    assert ("were kept" in status) == saved and ("no weights were saved" in status) == (not saved)
    if saved:
        assert all(torch.isfinite(p).all() for p in maskdepth.load_model(run).parameters())


@pytest.mark.parametrize(
    ("code", "fix"),
    [(errno.ENOSPC, "free some disk space"), (errno.EROFS, "make it writable")],
    ids=["disk-full", "read-only"],
)
def test_write_failure_mid_run_names_the_folder_and_keeps_the_best(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, fix: str
) -> None:
    real_save, real_eval = hub_mod.save_file, evaluate_mod.evaluate
    counts = {"save": 0, "eval": 0}

    def fails_after_first(state: dict, path: str, *args: Any, **kwargs: Any) -> None:
        counts["save"] += 1
        if counts["save"] >= 2:
            Path(path).write_bytes(b"half a safetensors file")
            raise OSError(code, os.strerror(code))
        real_save(state, path, *args, **kwargs)

    def always_better(*args: Any, **kwargs: Any) -> Any:
        result = real_eval(*args, **kwargs)
        counts["eval"] += 1
        result.loss = 1.0 / counts["eval"]  # every evaluation is a new best, so every one saves
        return result

    monkeypatch.setattr(hub_mod, "save_file", fails_after_first)
    monkeypatch.setattr(evaluate_mod, "evaluate", always_better)
    run = tmp_path / "run"
    events: list[Any] = []
    first: dict[str, bytes] = {}

    def on_event(event: Any) -> None:
        events.append(event)
        if isinstance(event, EvalEvent) and not first:
            first["weights"] = (run / "model.safetensors").read_bytes()

    with pytest.raises(TrainingError) as info:
        train_mod.train(tiny_config(run, steps=4, eval_every=1), on_event)
    message = str(info.value)
    assert str(run) in message and fix in message and os.strerror(code) in message
    assert (run / "model.safetensors").read_bytes() == first["weights"]  # the previous best, intact
    assert maskdepth.load_model(run).base_width == 4
    assert json.loads((run / "metrics.json").read_text())["best"]["step"] == 1
    assert no_temp_files(run) == []
    done = events[-1]
    assert (
        isinstance(done, DoneEvent)
        and done.reason == "error"
        and done.best is not None
        and done.best.step == 1
    )


def test_read_only_runs_folder_is_reported_in_the_app(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx.runs_dir.mkdir(parents=True)
    if os.geteuid() != 0:
        ctx.runs_dir.chmod(0o500)
    else:  # root writes anywhere: make the folder check meet what a read-only disk answers

        def read_only(folder: str | os.PathLike) -> Path:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(folder))

        monkeypatch.setattr(fileio, "check_writable", read_only)
    try:
        message = gr_message(lambda: train_stream(ctx, run_name="locked"))
    finally:
        ctx.runs_dir.chmod(0o700)
    assert "cannot write to the output folder" in message and str(ctx.runs_dir) in message
    assert os.strerror(errno.EROFS if os.geteuid() == 0 else errno.EACCES) in message


# ================================================================================================
# 5. Load: predictions while a training runs in the launched app
# ================================================================================================


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load_app() -> Any:
    spec = importlib.util.spec_from_file_location("maskdepth_app_hardening", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _step(job: Any) -> int:
    """The latest training step shown in the Train tab's progress bar (0 before the first)."""
    for html, *_ in reversed(job.outputs()):
        found = re.search(r"step (\d+)", html or "")
        if found:
            return int(found.group(1))
    return 0


def test_concurrent_predictions_while_training(tmp_path: Path, shipped: Path) -> None:
    from gradio_client import Client, handle_file

    demo = _load_app().build_demo(
        shipped,
        tmp_path / "runs",
        data_dir=tmp_path / "data",
        comparison_dir=tmp_path / "cmp",
        on_space=False,
    )
    # A flood waits in a bounded queue (then is told the queue is full) instead of piling up in memory.
    assert demo._queue.max_size == context.QUEUE_MAX_SIZE
    fns = {fn.api_name: fn for fn in demo.fns.values()}
    assert fns["predict"].concurrency_limit == PREDICT_CONCURRENCY
    assert fns["train"].concurrency_limit == TRAIN_CONCURRENCY
    demo.launch(prevent_thread_lock=True, server_port=_free_port(), quiet=True)
    try:
        bg, fg = write_image(tmp_path / "bg.png", 83, 61, 1), write_image(tmp_path / "fg.png", 83, 61, 2)
        trainer = Client(demo.local_url, verbose=False)
        args = {"dataset_kind": "synthetic", "zip_file": None, "folder": "", **tiny_controls(budget=100000)}
        args.update(eval_every=50, run_name="under-load")
        job = trainer.submit(**args, api_name="/train")
        deadline = time.monotonic() + 60
        while _step(job) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        before = _step(job)
        assert before >= 1, "the training did not start"
        errors: list[BaseException] = []
        sizes: list[tuple[int, int]] = []

        def client_loop() -> None:
            client = Client(demo.local_url, verbose=False)
            for _ in range(5):
                try:
                    out = client.predict(
                        handle_file(str(bg)), handle_file(str(fg)), DEFAULT_CHOICE, api_name="/predict"
                    )
                    sizes.append(Image.open(out[4]).size)
                except Exception as err:  # noqa: BLE001 - collected and asserted on below
                    errors.append(err)

        clients = [threading.Thread(target=client_loop) for _ in range(4)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(120)
        time.sleep(1.0)  # one more progress render
        after = _step(job)
        assert errors == [] and sizes == [(83, 61)] * 20
        assert after > before, "the training must keep going while predictions are served"
        # Through the real upload path too, a non-image gets our message (not Gradio's decoder error).
        notes = _write_text(tmp_path / "notes.png", "not a photo")
        with pytest.raises(Exception, match="is not an image PIL can read") as shown:
            trainer.predict(
                handle_file(str(bg)), handle_file(str(notes)), DEFAULT_CHOICE, api_name="/predict"
            )
        assert "Traceback" not in str(shown.value)
        trainer.predict(api_name="/stop_training")
        deadline = time.monotonic() + 30
        while not job.done() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert job.done()
    finally:
        demo.close()


# ================================================================================================
# 6. Secrets: HF_TOKEN never shows, is never logged, never written
# ================================================================================================


def _text(value: Any) -> str:
    """Everything a handler returned, as text (tables and arrays included)."""
    if isinstance(value, pd.DataFrame):
        return value.to_csv()
    if isinstance(value, np.ndarray):
        return value.tobytes().decode("latin-1")
    if isinstance(value, (list, tuple)):
        return "\n".join(_text(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(f"{k}={_text(v)}" for k, v in value.items())
    return str(value)


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A local fake Hub that knows another token than HF_TOKEN (so every call with ours is rejected)."""
    from fakehub import FakeHub
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with FakeHub(token="the-real-token-0000", user="alice") as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        yield server


def test_the_token_never_appears(
    tmp_path: Path,
    shipped: Path,
    fake_hub: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
) -> None:
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    caplog.set_level(logging.DEBUG)
    ctx = make_ctx(tmp_path / "app", shipped)
    image = write_image(tmp_path / "c.png", 40, 30)
    shown: list[str] = []

    def ui(call: Callable[[], Any]) -> None:
        try:
            result = call()
            shown.append(_text(list(result) if isinstance(result, Iterator) else result))
        except gr.Error as err:
            shown.append(err.message)

    # The app: predict, pick a model, train (run folder, card), load from and push to the (fake) Hub.
    ui(lambda: gradio_errors(predict_tab.predict)(str(image), str(image), DEFAULT_CHOICE, ctx=ctx))
    ui(lambda: predict_tab.model_info(DEFAULT_CHOICE, ctx=ctx))
    ui(lambda: train_stream(ctx, run_name="secret-run"))
    run = next(r for r in ctx.runs() if r.name.endswith("-secret-run"))
    ui(lambda: gradio_errors(models_tab.load_from_hub)(ctx, "alice/wnet"))
    ui(lambda: gradio_errors(models_tab.push)(ctx, run.name, "alice/wnet", False))
    ctx.on_space = True  # a signed-in visitor's token takes the same path
    visitor = gr.OAuthToken(token=FAKE_TOKEN, scope="write-repos", expires_at=0)
    ui(lambda: gradio_errors(models_tab.push)(ctx, run.name, "alice/wnet", False, visitor))
    ui(lambda: gradio_errors(models_tab.load_from_hub)(ctx, "alice/wnet", visitor))
    ctx.on_space = False
    assert any("rejected the token" in s for s in shown), shown
    # The CLI: predict, train, compare (results.json), push and pull (both rejected).
    cli_runs = tmp_path / "cli"
    tiny = ["--backgrounds", "2", "--foregrounds", "2", "--positions", "2", "--base-width", "4", "--size", "32",
            "--batch-size", "4", "--eval-samples", "4", "--steps", "2"]  # fmt: skip
    codes = [
        cli(
            [
                "predict",
                "--model",
                str(shipped),
                "--image",
                str(image),
                "--bg",
                str(image),
                "--out",
                str(cli_runs / "p"),
            ]
        ),
        cli(["train", *tiny, "--out", str(cli_runs / "run")]),
        cli(["compare", *tiny, "--variants", "bce|bce", "--out", str(cli_runs / "compare")]),
        cli(["push", str(cli_runs / "run"), "alice/wnet"]),
        cli(["pull", "alice/wnet", "--out", str(cli_runs / "pulled")]),
    ]
    assert codes == [0, 0, 0, 2, 2]
    out, err = capfd.readouterr()
    assert "rejected the token" in err
    # Every record file exists (so the grep below really read them) ...
    for folder in (run.path, cli_runs / "run"):
        for name in ("train_config.json", "metrics.json", "card.json", "README.md", "config.json"):
            assert (folder / name).is_file(), folder / name
    assert (cli_runs / "compare" / "results.json").is_file()
    # ... and the token is nowhere: not shown, not logged, not printed, not on disk.
    assert FAKE_TOKEN not in "\n".join(shown)
    assert caplog.records  # the app, the CLI and the Hub client did log
    assert FAKE_TOKEN not in caplog.text and not [r for r in caplog.records if FAKE_TOKEN in r.getMessage()]
    assert FAKE_TOKEN not in out and FAKE_TOKEN not in err
    needle = FAKE_TOKEN.encode()
    homes = [tmp_path, Path(os.environ["HF_HOME"])]
    leaks = [p for home in homes for p in home.rglob("*") if p.is_file() and needle in p.read_bytes()]
    assert leaks == []


# ================================================================================================
# 7. Paths typed into the UI: allow-listed on a Space, free locally
# ================================================================================================


@pytest.fixture
def space(tmp_path: Path, shipped: Path) -> tuple[AppContext, Path]:
    """A Space-mode context whose runs folder holds a good run, links pointing out, and a model outside it."""
    ctx = make_ctx(tmp_path / "app", shipped, on_space=True)
    outside = save_model(tiny_model(), tmp_path / "outside")
    save_model(tiny_model(), ctx.runs_dir / "good")
    (ctx.runs_dir / "link").symlink_to(outside, target_is_directory=True)
    (ctx.runs_dir / "good" / "nested").mkdir()
    (ctx.runs_dir / "good" / "nested" / "deep").symlink_to(outside, target_is_directory=True)
    (ctx.runs_dir / "etc").symlink_to("/etc", target_is_directory=True)
    (outside / "results.json").write_text('{"variants": {}, "gallery": []}')
    (ctx.runs_dir / "compare-link").symlink_to(outside, target_is_directory=True)
    return ctx, outside


def _hostile_paths(ctx: AppContext, outside: Path) -> list[str]:
    return [
        "../outside",
        "../../outside",
        str(outside),
        "/etc/passwd",
        "link",  # a symlink inside the runs folder pointing outside
        "good/nested/deep",
        "etc",
        "runs/../../x",
        f"{ctx.runs_dir}/../../outside",
        str(ctx.runs_dir / "link"),
        "https://evil.example/model",
        "file:///etc/passwd",
        "~/models",
        ".",
        "..",
    ]


def test_space_refuses_every_path_outside_the_allowed_folders(
    space: tuple[AppContext, Path], tmp_path: Path
) -> None:
    ctx, outside = space
    image = write_image(tmp_path / "c.png", 40, 30)
    token = gr.OAuthToken(token="visitor-token", scope="", expires_at=0)
    hostile = _hostile_paths(ctx, outside)
    for value in hostile:
        predicted = gr_message(
            lambda v=value: gradio_errors(predict_tab.predict)(str(image), str(image), v, ctx=ctx)
        )
        info, _ = predict_tab.model_info(value, ctx=ctx)
        with pytest.raises(InputError) as resume:
            train_tab.build_config(
                ctx, dataset="synthetic", **{**tiny_controls(resume=value), "run_name": "x"}
            )
        with pytest.raises(InputError) as pushed:
            models_tab.push(ctx, value, "alice/wnet", False, token)
        with pytest.raises(InputError) as loaded:
            models_tab.load_from_hub(ctx, value)
        for text in (predicted, info, str(resume.value), str(pushed.value)):
            assert re.search(r"on this Space|contains '\.\.'|outside the runs folder", text), (value, text)
        assert "not a Hub repo id" in str(loaded.value)
    assert str(outside) not in {source for source, _ in ctx.predictors._items}
    # The comparison picker lists no link, and a typed name outside the list is refused.
    assert "compare-link" not in compare_tab.comparison_choices(ctx)
    with pytest.raises(InputError, match="no comparison named"):
        compare_tab.comparison_folder(ctx, "compare-link")
    # What is allowed stays allowed: a run, the shipped model, a Hub id.
    assert ctx.resolve_source("good") == str(ctx.runs_dir / "good")
    assert ctx.resolve_source(DEFAULT_CHOICE) == str(ctx.checkpoints_dir)
    assert ctx.resolve_source("alice/wnet") == "alice/wnet"


def test_local_app_accepts_local_paths(space: tuple[AppContext, Path], tmp_path: Path) -> None:
    ctx, outside = space
    ctx.on_space = False
    image = write_image(tmp_path / "c.png", 40, 30)
    for value in (str(outside), "link", "good/nested/deep"):
        overlay, *_ = predict_tab.predict(str(image), str(image), value, ctx=ctx)
        assert Image.open(overlay).size == (40, 30)
    relative = os.path.relpath(outside, Path.cwd())
    assert ctx.resolve_source(relative) == relative

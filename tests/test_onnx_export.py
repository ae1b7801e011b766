"""maskdepth.hub.onnx_export: the W-Net as one ONNX file, run by onnxruntime as PyTorch runs it.

One tiny W-Net is exported once for the module (~10 s: torch.export is slow, not the model); the
shipped model's export takes ~7 s more. docs/onnx.md's code is run here against the Predictor.
"""

from __future__ import annotations

import errno
import json
import re
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from skimage import data
from support.models import tiny_model

from maskdepth.errors import CheckpointError, InputError
from maskdepth.hub.checkpoint import SHIPPED_DIR, load_model
from maskdepth.hub.onnx_export import export_onnx
from maskdepth.predict.predictor import Predictor

DOC = Path(__file__).resolve().parents[1] / "docs" / "onnx.md"
SHAPES = [(1, 128, 160), (2, 96, 224)]  # (batch, height, width): other than the traced (2, 64, 96)
SHIPPED_BUDGET = 20.0  # seconds; the shipped model's export measured ~7 s on one core


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def assert_same_as_torch(model, path: Path) -> None:
    """Mask and depth from onnxruntime within 1e-3 of PyTorch's (after a sigmoid) at SHAPES."""
    sess = session(path)
    assert [o.name for o in sess.get_outputs()] == ["mask", "depth"]
    gen = torch.Generator().manual_seed(0)
    for batch, height, width in SHAPES:
        x = torch.rand(batch, model.in_channels, height, width, generator=gen) * 2 - 1
        with torch.no_grad():
            want = model(x)
        mask, depth = sess.run(["mask", "depth"], {"input": x.numpy()})
        assert mask.shape == depth.shape == (batch, 1, height, width)
        for got, ref in ((mask, want.mask), (depth, want.depth)):
            diff = (torch.sigmoid(torch.from_numpy(got)) - torch.sigmoid(ref)).abs().max()
            assert diff < 1e-3, (batch, height, width, float(diff))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[torch.nn.Module, Path]:
    model = tiny_model()
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "tiny.onnx")
    return model, path


def test_a_tiny_model_runs_in_onnxruntime(tiny) -> None:
    model, path = tiny
    assert_same_as_torch(model, path)


def test_one_checked_file_with_dynamic_shapes_and_the_contract(tiny) -> None:
    model, path = tiny
    assert [p.name for p in path.parent.iterdir()] == ["tiny.onnx"]  # no external data, no temp file
    proto = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(proto, full_check=True)
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    dims = {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in proto.graph.input
    }
    assert dims == {"input": ["batch", 6, "height", "width"]}
    assert [v.name for v in proto.graph.output] == ["mask", "depth"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert "bg" in meta["maskdepth.input"] and meta["maskdepth.input"].index("bg") < meta[
        "maskdepth.input"
    ].index("fg_bg")
    assert meta["maskdepth.normalisation"].startswith("(x - 0.5) / 0.5")
    assert "logits" in meta["maskdepth.outputs"] and "sigmoid" in meta["maskdepth.outputs"]
    assert "near = 1" in meta["maskdepth.depth_convention"]
    assert "multiples of 32" in meta["maskdepth.size"]
    assert json.loads(meta["maskdepth.config"]) == model.config


def test_the_shipped_model(tmp_path) -> None:
    if not (SHIPPED_DIR / "model.safetensors").is_file():
        pytest.skip("no shipped model in checkpoints/")
    start = time.perf_counter()
    path = export_onnx("checkpoints", tmp_path / "shipped.onnx")  # a source string, as the CLI passes it
    seconds = time.perf_counter() - start
    if seconds > SHIPPED_BUDGET:
        pytest.skip(f"exporting the shipped model took {seconds:.0f} s (> {SHIPPED_BUDGET:.0f} s) here")
    assert path.stat().st_size > 30e6  # 8.7M float32 weights inside
    assert_same_as_torch(load_model("checkpoints"), path)


def test_a_source_that_is_not_a_model(tmp_path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(data.coffee()).save(photos / "coffee.png")
    notes = tmp_path / "notes.txt"
    notes.write_text("not weights")
    out = tmp_path / "out"
    for source in (photos, notes, tmp_path / "missing"):
        with pytest.raises(CheckpointError, match="maskdepth|save_model|checkpoint"):
            export_onnx(source, out / "model.onnx")
    with pytest.raises(CheckpointError, match="pass a maskdepth WNet"):
        export_onnx(torch.nn.Conv2d(6, 1, 3), out / "model.onnx")
    assert not out.exists()  # nothing was written, not even the folder


def test_an_unwritable_destination_leaves_nothing_behind(tmp_path, monkeypatch) -> None:
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("x")
    with pytest.raises(InputError, match="choose a folder you can write to"):
        export_onnx(tiny_model(), in_the_way / "model.onnx")
    with pytest.raises(InputError, match="is a folder"):
        export_onnx(tiny_model(), tmp_path)

    # The disk fills up half-way through the file: the old file stays, no temp file is left.
    (tmp_path / "model.onnx").write_bytes(b"the previous export")

    class HalfWritten:  # what torch.onnx.export returns, as far as export_onnx uses it
        model = SimpleNamespace(metadata_props={}, doc_string="")

        def save(self, path, external_data):
            Path(path).write_bytes(b"half a model")
            raise OSError(errno.ENOSPC, "No space left on device")

    exported = []
    monkeypatch.setattr(torch.onnx, "export", lambda model, *a, **k: exported.append(model) or HalfWritten())
    training = tiny_model().train()
    with pytest.raises(InputError, match="No space left on device"):
        export_onnx(training, tmp_path / "model.onnx")
    assert (
        not exported[0].training and training.training
    )  # a copy in eval mode went out, the model is as it was
    assert (tmp_path / "model.onnx").read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "model.onnx"]


def doc_code() -> list[str]:
    """The python code blocks of docs/onnx.md after its "Running it" heading."""
    text = DOC.read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text.split("## Running it", 1)[1], flags=re.S)


def pair(photo: np.ndarray, patch: np.ndarray, at: tuple[int, int]) -> tuple[Image.Image, Image.Image]:
    """(bg, fg_bg): a photo, and the same photo with ``patch`` pasted at (row, column) ``at``."""
    fg_bg = photo.copy()
    r, c = at
    fg_bg[r : r + patch.shape[0], c : c + patch.shape[1]] = patch
    return Image.fromarray(photo), Image.fromarray(fg_bg)


def test_the_docs_snippet_matches_the_predictor(tiny, tmp_path, monkeypatch) -> None:
    model, path = tiny
    functions, usage = doc_code()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "maskdepth.onnx").write_bytes(path.read_bytes())
    predictor = Predictor(model, refine=False, depth_view=None)
    landscape = pair(data.coffee(), data.chelsea()[100:210, 200:320], (150, 380))  # 600 x 400
    portrait = pair(
        np.ascontiguousarray(data.chelsea().transpose(1, 0, 2)), data.coffee()[:90, :70], (200, 100)
    )
    landscape[0].save("bg.jpg", quality=95)
    landscape[1].save("fg_bg.jpg", quality=95)

    scope: dict = {}
    exec(compile(functions + usage, str(DOC), "exec"), scope)  # the doc's own example, on bg.jpg / fg_bg.jpg
    want = predictor.predict("fg_bg.jpg", "bg.jpg")
    assert want.working_size == (256, 171) and scope["mask"].shape == (400, 600)
    np.testing.assert_allclose(scope["mask"], want.mask, atol=1e-3)
    np.testing.assert_allclose(scope["depth"], want.depth, atol=1e-3)
    assert Path("mask.png").is_file() and Path("depth.png").is_file()

    bg, fg_bg = portrait  # 300 x 451: works at 170 x 256, padded to 192 x 256
    mask, depth = scope["predict"](scope["session"], bg, fg_bg)
    want = predictor.predict(fg_bg, bg)
    assert want.working_size == (170, 256) and mask.shape == (451, 300)
    np.testing.assert_allclose(mask, want.mask, atol=1e-3)
    np.testing.assert_allclose(depth, want.depth, atol=1e-3)
    assert np.ptp(want.depth) > 1e-3  # a real comparison: the maps are not flat

"""Hardening (issue 5), checkpoints through the app's model picker and the CLI's ``--model``.

Every bad checkpoint (hostile pickles, cut files, other networks, lying configs) is named, in the
app's error and the picker's note and on the CLI (the ``entry`` fixture); none is allocated or run.
"""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from support.files import RunsCode, cut, write_bytes
from support.models import tiny_model, write_image

from maskdepth import WNet
from maskdepth.hub.checkpoint import save_model
from maskdepth.model.wnet import MAX_BASE_WIDTH

pytestmark = pytest.mark.usefixtures("training_slot_free")


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
    return cut(folder / "full.pt", folder / "cut.pt")


def _truncated_safetensors(folder: Path) -> Path:
    model = save_model(tiny_model(), folder / "cut-model")
    cut(model / "model.safetensors", model / "model.safetensors.part").replace(model / "model.safetensors")
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
    "empty.pt": (lambda d: write_bytes(d / "empty.pt", b""), "not a PyTorch checkpoint"),
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
def test_bad_checkpoint_is_named(entry: Any, tmp_path: Path, case: str) -> None:
    build, needle = BAD_CHECKPOINTS[case]
    source = build(tmp_path)
    image = write_image(tmp_path / "c.png", 40, 30)
    start = time.perf_counter()
    for message in entry.model_errors(source, image, tmp_path / "o"):  # the app: also the picker's note
        assert needle in message, message
    assert time.perf_counter() - start < 10  # a huge config is refused, never allocated
    assert not (tmp_path / "pwned").exists()  # the pickles' payload never ran

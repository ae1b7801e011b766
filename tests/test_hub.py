"""maskdepth.hub: save/load round trips, seed checkpoints, refusals, model card, and the Hub
(push / load / pull / offline) against tests/fakehub.py driven by the real huggingface_hub client."""

from __future__ import annotations

import json
import logging
import os
import pickle
import shlex
import socket
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from maskdepth import checkpoint, hub
from maskdepth.card import model_card
from maskdepth.checkpoint import load_model, save_model
from maskdepth.errors import CheckpointError, HubError, InputError
from maskdepth.hub import pull, push_to_hub
from maskdepth.model import SEED_PARAMETERS, WNet, count_parameters

sys.path.insert(0, str(Path(__file__).parent))
from fakehub import FakeHub  # noqa: E402

TOKEN = "test-write-token-4b9e2d71"  # deliberately not hf_-shaped: redaction must use the literal
HF_LIKE_TOKEN = "hf_AbCdEfGhIjKlMnOpQrStUv123"

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- helpers
def tiny(in_channels: int = 6, width: int = 4, seed: int = 0, **kwargs: int) -> WNet:
    """A small WNet with non-trivial BatchNorm statistics (so buffers must round-trip too)."""
    torch.manual_seed(seed)
    model = WNet(in_channels=in_channels, base_width=width, **kwargs)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
            module.num_batches_tracked.fill_(7)
    return model.eval()


def logits(model: WNet, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(123)
    x = torch.rand(1, model.in_channels, size, size, generator=generator) * 2 - 1
    with torch.no_grad():
        out = model.eval()(x)
    return out.mask, out.depth


def assert_same_outputs(a: WNet, b: WNet, size: int = 32) -> None:
    for got, want in zip(logits(b, size), logits(a, size), strict=True):
        assert torch.equal(got, want)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def full_error_text(err: BaseException) -> str:
    """Message plus the whole chained traceback, as a user would see it."""
    return "".join(traceback.format_exception(type(err), err, err.__traceback__))


class RunsCode:
    """Pickles to a call of os.system: what a malicious checkpoint looks like."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


# ----------------------------------------------------------------------------- save / load
def test_save_load_round_trip_is_exact(tmp_path: Path) -> None:
    model = tiny(image_size=48)
    folder = save_model(model, tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((folder / "config.json").read_text()) == model.config
    loaded = load_model(folder)
    assert isinstance(loaded, WNet) and not loaded.training
    assert loaded.config == model.config
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    assert_same_outputs(model, loaded)
    assert torch.equal(loaded.inc.double_conv[1].num_batches_tracked, torch.tensor(7))


def test_fp16_save_is_half_size_and_loads_as_float32(tmp_path: Path) -> None:
    model = tiny(width=8)
    full = save_model(model, tmp_path / "fp32") / "model.safetensors"
    half = save_model(model, tmp_path / "fp16", fp16=True) / "model.safetensors"
    assert half.stat().st_size < 0.6 * full.stat().st_size
    with safe_open(str(half), framework="pt") as f:
        assert f.get_tensor("inc.double_conv.0.weight").dtype == torch.float16
        assert f.get_tensor("inc.double_conv.1.num_batches_tracked").dtype == torch.int64
    loaded = load_model(half.parent)
    assert all(t.dtype == torch.float32 for t in loaded.state_dict().values() if t.is_floating_point())
    for got, want in zip(logits(loaded), logits(model), strict=True):
        torch.testing.assert_close(got, want, atol=5e-2, rtol=5e-2)


def test_saved_folder_also_loads_with_from_pretrained(tmp_path: Path) -> None:
    model = tiny()
    folder = save_model(model, tmp_path / "m")
    assert_same_outputs(model, WNet.from_pretrained(folder, strict=True))


def test_save_replaces_weights_and_keeps_other_run_files(tmp_path: Path) -> None:
    folder = save_model(tiny(seed=0), tmp_path / "run")
    (folder / "last.pt").write_bytes(b"resume state")
    (folder / "samples").mkdir()
    (folder / "samples" / "a.png").write_bytes(b"png")
    newer = tiny(seed=1)
    save_model(newer, folder, card={"dataset": "synthetic"})
    assert_same_outputs(newer, load_model(folder))
    assert (folder / "last.pt").read_bytes() == b"resume state"
    assert (folder / "samples" / "a.png").read_bytes() == b"png"
    assert (folder / "README.md").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temp or backup folders left


def test_failed_save_leaves_the_old_folder_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = tiny(seed=0)
    folder = save_model(good, tmp_path / "m")

    def crash(state: dict, path: str, metadata: dict | None = None) -> None:
        Path(path).write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", crash)
    with pytest.raises(OSError, match="No space left"):
        save_model(tiny(seed=1), folder)
    assert_same_outputs(good, load_model(folder))
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_save_onto_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("not a folder")
    with pytest.raises(InputError, match="not a folder"):
        save_model(tiny(), tmp_path / "x")


# ----------------------------------------------------------------------------- seed checkpoints
def test_seed_checkpoint_of_the_default_wnet_loads_exactly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = WNet().eval()
    assert count_parameters(model) == SEED_PARAMETERS
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    path = tmp_path / "seed_best.pt"
    torch.save(
        {
            "epoch": 7,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
            "loss": torch.tensor(0.1234),
            "acc": 0.987,
        },
        path,
    )
    loaded = load_model(path)
    assert loaded.config == {"in_channels": 6, "out_channels": 1, "base_width": 32, "image_size": 64}
    assert count_parameters(loaded) == SEED_PARAMETERS
    assert_same_outputs(model, loaded, size=64)


@pytest.mark.parametrize("in_channels,width", [(3, 16), (6, 4)])
def test_bare_state_dict_config_is_inferred(tmp_path: Path, in_channels: int, width: int) -> None:
    model = tiny(in_channels=in_channels, width=width)
    torch.save(model.state_dict(), tmp_path / "bare.pth")
    loaded = load_model(tmp_path / "bare.pth")
    assert (loaded.in_channels, loaded.base_width) == (in_channels, width)
    assert_same_outputs(model, loaded)


def test_dataparallel_prefix_is_stripped(tmp_path: Path) -> None:
    model = tiny()
    torch.save(
        {"model_state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "dp.pt"
    )
    assert_same_outputs(model, load_model(tmp_path / "dp.pt"))


def test_safetensors_file_loads_directly_and_keeps_image_size(tmp_path: Path) -> None:
    model = tiny(image_size=48)
    save_file(model.state_dict(), str(tmp_path / "plain.safetensors"))
    assert_same_outputs(model, load_model(tmp_path / "plain.safetensors"))
    # The file save_model writes carries its config in the metadata, so it can travel alone.
    saved = save_model(model, tmp_path / "m") / "model.safetensors"
    alone = tmp_path / "alone.safetensors"
    alone.write_bytes(saved.read_bytes())
    assert load_model(alone).image_size == 48


def test_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    torch.save({"model_state_dict": RunsCode(marker), "epoch": 1}, tmp_path / "evil.pt")
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"model_state_dict": RunsCode(marker)}, f)
    for name in ("evil.pt", "evil.pkl"):
        with pytest.raises(CheckpointError, match="weights_only") as info:
            load_model(tmp_path / name)
        assert "run code" in str(info.value)
        assert not marker.exists()
    # The payload is live: plain unpickling would have run it.
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(RunsCode(live)))
    assert live.exists()


def test_truncated_and_garbage_files_are_checkpoint_errors(tmp_path: Path) -> None:
    torch.save({"model_state_dict": tiny().state_dict()}, tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.pt").write_bytes(b"definitely not a checkpoint")
    (tmp_path / "empty.pt").write_bytes(b"")
    for name in ("cut.pt", "garbage.pt", "empty.pt"):
        with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
            load_model(tmp_path / name)
    folder = save_model(tiny(), tmp_path / "m")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated or not a safetensors file"):
        load_model(folder)


def test_other_architecture_is_named(tmp_path: Path) -> None:
    torchvision = pytest.importorskip("torchvision")
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet.pth")
    with pytest.raises(CheckpointError) as info:
        load_model(tmp_path / "resnet.pth")
    message = str(info.value)
    assert "does not hold W-Net weights" in message
    assert "conv1.weight" in message and "inc.double_conv.0.weight" in message


def test_extra_and_missing_tensors_are_listed(tmp_path: Path) -> None:
    state = tiny().state_dict()
    state.pop("outc_depth.conv.bias")
    state["decoder.extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError) as info:
        load_model(tmp_path / "odd.pt")
    message = str(info.value)
    assert "outc_depth.conv.bias" in message and "decoder.extra.weight" in message


def test_folder_config_with_wrong_width_names_both(tmp_path: Path) -> None:
    folder = save_model(tiny(width=4), tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "base_width": 8}))
    with pytest.raises(CheckpointError) as info:
        load_model(folder)
    message = str(info.value)
    assert "base_width=8" in message  # what config.json asked for
    assert "(4, 6, 3, 3)" in message and "(8, 6, 3, 3)" in message  # file vs expected shape
    assert "look like in_channels=6, base_width=4" in message
    assert "config.json" in message


@pytest.mark.parametrize(
    "text,needle",
    [
        ('{"in_channels": 5, "base_width": 4}', "in_channels"),
        ('{"in_channels": 6, "base_width": -4}', "base_width"),
        ('{"in_channels": 6, "base_width": 4, "image_size": "64"}', "image_size"),
        ('{"in_channels": 6, "base_width": 4, "out_channels": true}', "out_channels"),
        ("{oops", "not valid JSON"),
        ("[6, 4]", "JSON object"),
    ],
)
def test_bad_config_values_name_the_field(tmp_path: Path, text: str, needle: str) -> None:
    folder = save_model(tiny(), tmp_path / "m")
    (folder / "config.json").write_text(text)
    with pytest.raises(CheckpointError, match=needle) as info:
        load_model(folder)
    assert "config.json" in str(info.value)


def test_missing_path_that_is_not_a_repo_id(tmp_path: Path) -> None:
    for source in (tmp_path / "nope", "nope.pt", "runs/best.pt"):
        with pytest.raises(
            CheckpointError, match=r"no such file or folder, and not a Hub repo id \(owner/name\)"
        ):
            load_model(source)


def test_folder_without_weights_lists_its_content(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "epoch3.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="no model.safetensors.*epoch3.pt"):
        load_model(tmp_path / "m")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_an_input_error(tmp_path: Path) -> None:
    folder = save_model(tiny(), tmp_path / "m")
    with pytest.raises(InputError, match="device='cpu'"):
        load_model(folder, device="cuda")


# ----------------------------------------------------------------------------- model card
def test_model_card_has_metadata_metrics_command_and_no_token() -> None:
    card = model_card(
        {
            "repo_id": "alice/wnet",
            "model_config": {"in_channels": 6, "out_channels": 1, "base_width": 4, "image_size": 64},
            "metrics": {"mask_dice": 0.9, "mask_iou": 0.82, "depth_rmse": 0.07, "depth_absrel": 0.12},
            "losses": {"mask": "bce", "depth": "ssim"},
            "train_config": {
                "epochs": 3,
                "lr": 0.01,
                "hub_token": HF_LIKE_TOKEN,
                "env": {"HF_TOKEN": HF_LIKE_TOKEN, "note": f"pushed with {HF_LIKE_TOKEN}"},
            },
            "dataset": "2,000 synthetic scenes at 64x64",
            "command": "python -m maskdepth train --epochs 3 --width 4",
        }
    )
    front, body = card.split("---\n", 2)[1:]
    assert "library_name: maskdepth" in front and "license: mit" in front
    assert "pipeline_tag: depth-estimation" in front and "- depth-estimation" in front
    assert "| Mask Dice | 0.9000 | higher |" in body
    assert "| Depth RMSE | 0.0700 | lower |" in body
    assert "mask: bce, depth: ssim" in body
    assert '"epochs": 3' in body and "2,000 synthetic scenes" in body
    assert "python -m maskdepth train --epochs 3 --width 4" in body
    assert 'maskdepth.load_model("alice/wnet")' in body
    assert HF_LIKE_TOKEN not in card and "hub_token" not in card and "HF_TOKEN" not in card
    assert f"{count_parameters(tiny()):,}" in body


# ----------------------------------------------------------------------------- the (fake) Hub
@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline mode off, even if the shell running the tests set HF_HUB_OFFLINE=1."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


@pytest.fixture
def fake_hub(online: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A fake Hub on a free port; HF_ENDPOINT points at it (maskdepth.hub reads it per call)."""
    with FakeHub(token=TOKEN, user="alice") as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        yield server


def stored_text(server: FakeHub) -> bytes:
    return b"\n".join(data for _, _, data in server.all_bytes())


def test_push_then_load_from_the_hub_is_exact(fake_hub: FakeHub) -> None:
    model = tiny()
    url = push_to_hub(model, "alice/wnet", token=TOKEN, card={"dataset": "synthetic"})
    assert url == f"{fake_hub.endpoint}/alice/wnet"
    assert set(fake_hub.repos["alice/wnet"].files) == {
        ".gitattributes",
        "config.json",
        "model.safetensors",
        "README.md",
    }
    assert 'maskdepth.load_model("alice/wnet")' in fake_hub.repos["alice/wnet"].files["README.md"].decode()
    loaded = load_model("alice/wnet")
    assert not loaded.training
    assert_same_outputs(model, loaded)
    assert TOKEN.encode() not in stored_text(fake_hub)


def test_push_run_folder_then_pull(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # the token comes from the environment this time
    model = tiny()
    run = save_model(model, tmp_path / "run")
    (run / "last.pt").write_bytes(b"optimizer state: must stay local")
    (run / "metrics.json").write_text(json.dumps({"best": {"epoch": 2, "metrics": {"mask_dice": 0.75}}}))
    (run / "train_config.json").write_text(
        json.dumps({"epochs": 2, "hub_token": TOKEN, "notes": f"token was {TOKEN}", "other": HF_LIKE_TOKEN})
    )
    push_to_hub(run, "alice/run")
    files = fake_hub.repos["alice/run"].files
    assert set(files) == {
        ".gitattributes",
        "config.json",
        "model.safetensors",
        "README.md",
        "metrics.json",
        "train_config.json",
    }
    assert "| Mask Dice | 0.7500 | higher |" in files["README.md"].decode()
    assert json.loads(files["train_config.json"])["epochs"] == 2
    everything = stored_text(fake_hub)
    assert TOKEN.encode() not in everything and HF_LIKE_TOKEN.encode() not in everything

    pulled = pull("alice/run", tmp_path / "pulled")
    assert sorted(p.name for p in pulled.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert not any(p.is_symlink() for p in pulled.iterdir())
    assert_same_outputs(model, load_model(pulled))


def test_missing_repo_is_a_not_found_hub_error(fake_hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(HubError, match="Repo alice/nothing not found on the Hub"):
        load_model("alice/nothing")
    with pytest.raises(HubError, match="not found"):
        pull("alice/nothing", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_private_repo_needs_the_token(fake_hub: FakeHub) -> None:
    model = tiny()
    push_to_hub(model, "alice/secret", token=TOKEN, private=True)
    assert fake_hub.repos["alice/secret"].private
    with pytest.raises(HubError, match="not found.*private"):
        load_model("alice/secret")
    assert_same_outputs(model, load_model("alice/secret", token=TOKEN))


def test_unknown_revision_and_repo_without_weights(fake_hub: FakeHub) -> None:
    push_to_hub(tiny(), "alice/wnet", token=TOKEN)
    with pytest.raises(HubError, match="Revision 'v9' not found"):
        load_model("alice/wnet", revision="v9")
    fake_hub.add_repo("alice/notes", {"README.md": b"# just notes\n"})
    with pytest.raises(HubError, match="has no model.safetensors"):
        load_model("alice/notes")


def test_no_server_fails_fast(online: None, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    for call in (lambda: load_model("alice/wnet"), lambda: push_to_hub(tiny(), "alice/wnet", token=TOKEN)):
        start = time.monotonic()
        with pytest.raises(HubError, match=f"Cannot reach the Hugging Face Hub at {endpoint}") as info:
            call()
        assert time.monotonic() - start < 10
        assert "check your network" in str(info.value)
        assert TOKEN not in full_error_text(info.value)


def test_bad_token_is_rejected_without_echoing_it(fake_hub: FakeHub) -> None:
    wrong = "wrong-token-9f8e7d6c"
    with pytest.raises(HubError, match="rejected the token") as info:
        push_to_hub(tiny(), "alice/wnet", token=wrong)
    assert "https://huggingface.co/settings/tokens" in str(info.value) and "HF_TOKEN" in str(info.value)
    assert wrong not in full_error_text(info.value)
    with pytest.raises(HubError, match="rejected the token") as info:
        load_model("alice/wnet", token=wrong)
    assert wrong not in full_error_text(info.value)
    assert "alice/wnet" not in fake_hub.repos


def test_read_only_token_and_foreign_namespace(fake_hub: FakeHub) -> None:
    with pytest.raises(HubError, match="refused access to bob/wnet") as info:
        push_to_hub(tiny(), "bob/wnet", token=TOKEN)
    assert TOKEN not in full_error_text(info.value)
    fake_hub.token_role = "read"
    with pytest.raises(HubError, match="read-only"):
        push_to_hub(tiny(), "alice/wnet", token=TOKEN)


def test_no_token_anywhere(fake_hub: FakeHub) -> None:
    with pytest.raises(HubError, match="No Hugging Face token found.*HF_TOKEN"):
        push_to_hub(tiny(), "alice/wnet")
    with pytest.raises(HubError, match="not a Hub repo id"):
        push_to_hub(tiny(), "not a repo", token=TOKEN)


def test_token_never_reaches_the_logs(fake_hub: FakeHub) -> None:
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Collect(level=logging.DEBUG)
    loggers = [logging.getLogger(name) for name in ("huggingface_hub", "maskdepth", "httpx2", "httpcore")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        push_to_hub(tiny(), "alice/wnet", token=TOKEN)
        load_model("alice/wnet", token=TOKEN)
        with pytest.raises(HubError):
            push_to_hub(tiny(), "bob/wnet", token=TOKEN)
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
    assert records  # the client did log its requests
    assert not [r for r in records if TOKEN in r]


@pytest.mark.parametrize("how", ["env", "constant"])
def test_offline_uses_the_cache(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    from huggingface_hub import constants

    model = tiny()
    push_to_hub(model, "alice/wnet", token=TOKEN)
    load_model("alice/wnet")  # fills the cache
    if how == "env":  # set after huggingface_hub was imported: maskdepth reads it per call
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:  # set before the import, as a user's shell would
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    seen = len(fake_hub.requests)
    assert_same_outputs(model, load_model("alice/wnet"))
    assert len(fake_hub.requests) == seen  # not a single request
    with pytest.raises(HubError, match="Offline mode is on.*alice/other is not in the local cache"):
        load_model("alice/other")
    with pytest.raises(HubError, match="offline"):
        push_to_hub(model, "alice/wnet", token=TOKEN)


def test_unreachable_hub_falls_back_to_the_cache(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny()
    push_to_hub(model, "alice/wnet", token=TOKEN)
    load_model("alice/wnet")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    start = time.monotonic()
    assert_same_outputs(model, load_model("alice/wnet"))
    assert time.monotonic() - start < 10
    with pytest.raises(HubError, match="Cannot reach.*not in the local cache"):
        load_model("alice/never-downloaded")


# ----------------------------------------------------------------------------- the mixin's methods
def _broken_folders(tmp_path: Path) -> dict[str, Path]:
    """A saved folder with one tensor missing, and one with a tensor of another shape."""
    folders = {}
    for case in ("missing", "reshaped"):
        folder = save_model(tiny(), tmp_path / case)
        with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
            meta = f.metadata()
            state = {k: f.get_tensor(k) for k in f.keys()}
        if case == "missing":
            del state["outc_depth.conv.bias"]
        else:
            state["outc_mask.conv.weight"] = torch.zeros(1, 8, 1, 1)
        save_file(state, str(folder / "model.safetensors"), metadata=meta)
        folders[case] = folder
    return folders


def test_from_pretrained_is_the_strict_loader(tmp_path: Path) -> None:
    for case, folder in _broken_folders(tmp_path).items():
        with pytest.raises(CheckpointError) as ours:
            load_model(folder)
        with pytest.raises(CheckpointError) as mixin:
            WNet.from_pretrained(folder)
        assert str(mixin.value) == str(ours.value)
        expected = "outc_depth.conv.bias" if case == "missing" else "file (1, 8, 1, 1), expected (1, 4, 1, 1)"
        assert expected in str(mixin.value)
    with pytest.raises(ValueError, match="strictly"):
        WNet.from_pretrained(tmp_path / "missing", strict=False)


def test_save_pretrained_writes_what_save_model_writes(tmp_path: Path) -> None:
    model = tiny(image_size=48)
    model.save_pretrained(tmp_path / "mixin", model_card_kwargs={"dataset": "synthetic"})
    save_model(model, tmp_path / "ours", card={"dataset": "synthetic"})
    for name in ("config.json", "README.md"):
        assert (tmp_path / "mixin" / name).read_text() == (tmp_path / "ours" / name).read_text()
    alone = tmp_path / "alone.safetensors"  # the weights carry their config, as save_model's do
    alone.write_bytes((tmp_path / "mixin" / "model.safetensors").read_bytes())
    assert load_model(alone).image_size == 48
    assert_same_outputs(model, WNet.from_pretrained(tmp_path / "mixin"))


def _card(text: bytes, tmp_path: Path) -> ModelCard:
    (tmp_path / "README.md").write_bytes(text)
    return ModelCard.load(tmp_path / "README.md")


def test_pushed_card_is_one_the_hub_reads(fake_hub: FakeHub, tmp_path: Path) -> None:
    run = save_model(tiny(), tmp_path / "run")
    best = {"step": 3, "metrics": {"mask_dice": 0.75, "mask_iou": 0.6, "depth_rmse": 0.1}}
    (run / "metrics.json").write_text(json.dumps({"best": best, "dataset": "maskdepth synthetic scenes"}))
    (run / "README.md").write_text(model_card({"dataset": "old card"}))  # placeholder repo id
    push_to_hub(run, "alice/run", token=TOKEN, card={"space_url": "https://huggingface.co/spaces/alice/demo"})
    card = _card(fake_hub.repos["alice/run"].files["README.md"], tmp_path)
    assert (card.data.library_name, card.data.license, card.data.pipeline_tag) == (
        "maskdepth",
        "mit",
        "depth-estimation",
    )
    assert "image-segmentation" in card.data.tags
    results = {r.metric_type: r for r in card.data.eval_results}
    assert {k: r.metric_value for k, r in results.items()} == {
        "mask_dice": 0.75,
        "mask_iou": 0.6,
        "depth_rmse": 0.1,
    }
    assert results["mask_dice"].task_type == "image-segmentation"
    assert results["depth_rmse"].task_type == "depth-estimation"
    assert results["mask_dice"].dataset_name == "maskdepth synthetic scenes"
    assert 'maskdepth.load_model("alice/run")' in card.text and "owner/name" not in card.text
    assert "https://huggingface.co/spaces/alice/demo" in card.text


def test_every_push_path_writes_the_same_card(fake_hub: FakeHub) -> None:
    model = tiny()
    info = {"dataset": "maskdepth synthetic scenes", "metrics": {"mask_iou": 0.5}, "base_model": "bob/wnet"}
    push_to_hub(model, "alice/ours", token=TOKEN, card=info)
    url = model.push_to_hub("alice/mixin", token=TOKEN, model_card_kwargs=info)
    assert url == f"{fake_hub.endpoint}/alice/mixin"
    ours = fake_hub.repos["alice/ours"].files
    mixin = fake_hub.repos["alice/mixin"].files
    assert set(ours) == set(mixin) == {".gitattributes", "config.json", "model.safetensors", "README.md"}
    assert mixin["README.md"].decode() == ours["README.md"].decode().replace("alice/ours", "alice/mixin")
    assert "base_model: bob/wnet" in mixin["README.md"].decode()
    assert_same_outputs(model, load_model("alice/mixin"))
    assert_same_outputs(model, WNet.from_pretrained("alice/mixin"))  # the mixin's loader, our endpoint


SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints"


def test_push_the_shipped_model(fake_hub: FakeHub, tmp_path: Path) -> None:
    push_to_hub(SHIPPED, "alice/maskdepth", token=TOKEN)
    files = fake_hub.repos["alice/maskdepth"].files
    assert set(files) == {
        ".gitattributes",
        "config.json",
        "model.safetensors",
        "README.md",
        "metrics.json",
        "train_config.json",
    }
    assert files["model.safetensors"] == (SHIPPED / "model.safetensors").read_bytes()
    card = _card(files["README.md"], tmp_path)
    shipped = json.loads((SHIPPED / "evaluation.json").read_text())["metrics"]
    assert {r.metric_type: r.metric_value for r in card.data.eval_results} == {
        k: round(v, 4) for k, v in shipped.items()
    }
    assert 'maskdepth.load_model("alice/maskdepth")' in card.text
    assert_same_outputs(load_model(SHIPPED), load_model("alice/maskdepth"), size=64)


# ----------------------------------------------------------------------------- Spaces
SPACE_README = "---\ntitle: demo\nsdk: gradio\napp_file: app.py\nlicense: mit\n---\n\n# demo\n"


def _app_folder(root: Path) -> Path:
    """An app folder with everything a project checkout holds, wanted or not."""
    files = {
        "app.py": "print('app')\n",
        "requirements.txt": "torch\n",
        "README.md": SPACE_README,
        "maskdepth/__init__.py": "",
        "maskdepth/data/synthetic.py": "",
        "maskdepth/__pycache__/model.cpython-311.pyc": "bytecode",
        "examples/a_bg.jpg": "jpeg",
        "tests/test_app.py": "",
        "bench/run.py": "",
        "runs/r/config.json": "{}",
        ".venv/lib/site.py": "",
        ".env": f"HF_TOKEN={TOKEN}\n",
        "maskdepth/.secrets": TOKEN,
        "docs/architecture.md": "",
        "pyproject.toml": "",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    save_model(tiny(), root / "checkpoints", card={})
    (root / "checkpoints" / ".model.safetensors.123.tmp").write_bytes(b"half")
    return root


def test_publish_space_uploads_only_what_a_space_needs(fake_hub: FakeHub, tmp_path: Path) -> None:
    app = _app_folder(tmp_path / "app")
    expected = [
        "README.md",
        "app.py",
        "checkpoints/README.md",
        "checkpoints/config.json",
        "checkpoints/model.safetensors",
        "examples/a_bg.jpg",
        "maskdepth/__init__.py",
        "maskdepth/data/synthetic.py",
        "requirements.txt",
    ]
    published = hub.publish_space("alice/demo", app, token=TOKEN)
    assert published.url == f"{fake_hub.endpoint}/spaces/alice/demo"
    assert published.files == expected
    space = fake_hub.spaces["alice/demo"]
    assert space.sdk == "gradio" and "alice/demo" not in fake_hub.repos
    assert set(space.files) == {".gitattributes", *expected}
    assert (
        space.files["checkpoints/model.safetensors"]
        == (app / "checkpoints" / "model.safetensors").read_bytes()
    )
    assert TOKEN.encode() not in stored_text(fake_hub)
    (app / "app.py").write_text("print('v2')\n")  # publishing again updates the same Space
    assert hub.publish_space("alice/demo", app, token=TOKEN).files == expected
    assert fake_hub.spaces["alice/demo"].files["app.py"] == b"print('v2')\n"


def test_publish_space_refuses_a_folder_that_is_no_space(fake_hub: FakeHub, tmp_path: Path) -> None:
    app = _app_folder(tmp_path / "app")
    (app / "README.md").write_text("# no front matter\n")
    with pytest.raises(InputError, match="sdk: gradio"):
        hub.publish_space("alice/demo", app, token=TOKEN)
    (app / "app.py").unlink()
    with pytest.raises(InputError, match="no app.py"):
        hub.publish_space("alice/demo", app, token=TOKEN)
    assert fake_hub.spaces == {}


def test_cli_publish_space_with_the_model_repo(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """`python -m maskdepth publish-space OWNER/NAME --model-repo OWNER/WEIGHTS`: both repos get their files."""
    from maskdepth.__main__ import main

    app = _app_folder(tmp_path / "app")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    args = ["publish-space", "alice/demo", "--app-folder", str(app), "--model", str(app / "checkpoints")]
    assert main([*args, "--model-repo", "alice/weights"]) == 0
    out = capsys.readouterr().out
    assert f"{fake_hub.endpoint}/spaces/alice/demo" in out and "uploaded 9 files" in out
    assert set(fake_hub.repos["alice/weights"].files) >= {"config.json", "model.safetensors", "README.md"}
    card = ModelCard(fake_hub.repos["alice/weights"].files["README.md"].decode())
    assert card.data.library_name == "maskdepth" and 'load_model("alice/weights")' in card.text
    assert "checkpoints/model.safetensors" in fake_hub.spaces["alice/demo"].files
    assert TOKEN.encode() not in stored_text(fake_hub) and TOKEN not in out


def test_shipped_source_prefers_the_local_folder_then_the_repo(tmp_path: Path) -> None:
    from maskdepth.checkpoint import SHIPPED_DIR, SHIPPED_REPO, shipped_source

    assert shipped_source() == str(SHIPPED_DIR)  # the repo ships checkpoints/
    assert shipped_source(tmp_path / "absent") == SHIPPED_REPO
    save_model(tiny(), tmp_path / "here")
    assert shipped_source(tmp_path / "here") == str(tmp_path / "here")
    front = (Path(__file__).resolve().parent.parent / "README.md").read_text().split("---\n")[1]
    assert f"  - {SHIPPED_REPO}\n" in front and f"  - {SHIPPED_REPO} config.json,model.safetensors" in front

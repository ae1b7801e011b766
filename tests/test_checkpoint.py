"""maskdepth.hub.checkpoint: save/load round trips, seed checkpoints, refusals, and the Hub mixin's
save_pretrained / from_pretrained (which must behave as save_model / load_model)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from support.files import RunsCode
from support.models import assert_same_outputs, logits, save_seed_checkpoint, wnet_with_stats

from maskdepth import WNet, load_model, save_model
from maskdepth.errors import CheckpointError, InputError
from maskdepth.hub import checkpoint
from maskdepth.model.wnet import SEED_PARAMETERS, count_parameters


# ----------------------------------------------------------------------------- save / load
def test_save_load_round_trip_is_exact(tmp_path: Path) -> None:
    model = wnet_with_stats(image_size=48)
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
    model = wnet_with_stats(width=8)
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
    model = wnet_with_stats()
    folder = save_model(model, tmp_path / "m")
    assert_same_outputs(model, WNet.from_pretrained(folder, strict=True))


def test_save_replaces_weights_and_keeps_other_run_files(tmp_path: Path) -> None:
    folder = save_model(wnet_with_stats(seed=0), tmp_path / "run")
    (folder / "last.pt").write_bytes(b"resume state")
    (folder / "samples").mkdir()
    (folder / "samples" / "a.png").write_bytes(b"png")
    newer = wnet_with_stats(seed=1)
    save_model(newer, folder, card={"dataset": "synthetic"})
    assert_same_outputs(newer, load_model(folder))
    assert (folder / "last.pt").read_bytes() == b"resume state"
    assert (folder / "samples" / "a.png").read_bytes() == b"png"
    assert (folder / "README.md").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temp or backup folders left


def test_failed_save_leaves_the_old_folder_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = wnet_with_stats(seed=0)
    folder = save_model(good, tmp_path / "m")

    def crash(state: dict, path: str, metadata: dict | None = None) -> None:
        Path(path).write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", crash)
    with pytest.raises(OSError, match="No space left"):
        save_model(wnet_with_stats(seed=1), folder)
    assert_same_outputs(good, load_model(folder))
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_save_onto_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("not a folder")
    with pytest.raises(InputError, match="not a folder"):
        save_model(wnet_with_stats(), tmp_path / "x")


# ----------------------------------------------------------------------------- seed checkpoints
def test_seed_checkpoint_of_the_default_wnet_loads_exactly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = WNet().eval()
    assert count_parameters(model) == SEED_PARAMETERS
    path = save_seed_checkpoint(model, tmp_path / "seed_best.pt", loss=torch.tensor(0.1234), acc=0.987)
    loaded = load_model(path)
    assert loaded.config == {"in_channels": 6, "out_channels": 1, "base_width": 32, "image_size": 64}
    assert count_parameters(loaded) == SEED_PARAMETERS
    assert_same_outputs(model, loaded, size=64)


@pytest.mark.parametrize("in_channels,width", [(3, 16), (6, 4)])
def test_bare_state_dict_config_is_inferred(tmp_path: Path, in_channels: int, width: int) -> None:
    model = wnet_with_stats(in_channels=in_channels, width=width)
    torch.save(model.state_dict(), tmp_path / "bare.pth")
    loaded = load_model(tmp_path / "bare.pth")
    assert (loaded.in_channels, loaded.base_width) == (in_channels, width)
    assert_same_outputs(model, loaded)


def test_dataparallel_prefix_is_stripped(tmp_path: Path) -> None:
    model = wnet_with_stats()
    torch.save(
        {"model_state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "dp.pt"
    )
    assert_same_outputs(model, load_model(tmp_path / "dp.pt"))


def test_safetensors_file_loads_directly_and_keeps_image_size(tmp_path: Path) -> None:
    model = wnet_with_stats(image_size=48)
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
    torch.save({"model_state_dict": wnet_with_stats().state_dict()}, tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.pt").write_bytes(b"definitely not a checkpoint")
    (tmp_path / "empty.pt").write_bytes(b"")
    for name in ("cut.pt", "garbage.pt", "empty.pt"):
        with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
            load_model(tmp_path / name)
    folder = save_model(wnet_with_stats(), tmp_path / "m")
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
    state = wnet_with_stats().state_dict()
    state.pop("outc_depth.conv.bias")
    state["decoder.extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError) as info:
        load_model(tmp_path / "odd.pt")
    message = str(info.value)
    assert "outc_depth.conv.bias" in message and "decoder.extra.weight" in message


def test_folder_config_with_wrong_width_names_both(tmp_path: Path) -> None:
    folder = save_model(wnet_with_stats(width=4), tmp_path / "m")
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
    folder = save_model(wnet_with_stats(), tmp_path / "m")
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
    folder = save_model(wnet_with_stats(), tmp_path / "m")
    with pytest.raises(InputError, match="device='cpu'"):
        load_model(folder, device="cuda")


# ----------------------------------------------------------------------------- the mixin's methods
def _broken_folders(tmp_path: Path) -> dict[str, Path]:
    """A saved folder with one tensor missing, and one with a tensor of another shape."""
    folders = {}
    for case in ("missing", "reshaped"):
        folder = save_model(wnet_with_stats(), tmp_path / case)
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
    model = wnet_with_stats(image_size=48)
    model.save_pretrained(tmp_path / "mixin", model_card_kwargs={"dataset": "synthetic"})
    save_model(model, tmp_path / "ours", card={"dataset": "synthetic"})
    for name in ("config.json", "README.md"):
        assert (tmp_path / "mixin" / name).read_text() == (tmp_path / "ours" / name).read_text()
    alone = tmp_path / "alone.safetensors"  # the weights carry their config, as save_model's do
    alone.write_bytes((tmp_path / "mixin" / "model.safetensors").read_bytes())
    assert load_model(alone).image_size == 48
    assert_same_outputs(model, WNet.from_pretrained(tmp_path / "mixin"))

"""maskdepth.hub.transfer and the model card: push / load / pull / offline against tests/support/fakehub.py
(the ``fake_hub`` fixture) driven by the real huggingface_hub client, and Spaces."""

from __future__ import annotations

import json
import logging
import time
import traceback
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from support.fakehub import DEFAULT_TOKEN, FakeHub
from support.models import assert_same_outputs, tiny_model, wnet_with_stats
from support.net import free_port

from maskdepth import WNet, load_model, save_model
from maskdepth.errors import HubError, InputError
from maskdepth.hub import transfer as hub
from maskdepth.hub.card import model_card
from maskdepth.hub.transfer import pull, push_to_hub
from maskdepth.model.wnet import count_parameters

TOKEN = DEFAULT_TOKEN  # the fake Hub's token; deliberately not hf_-shaped: redaction must use the literal
HF_LIKE_TOKEN = "hf_AbCdEfGhIjKlMnOpQrStUv123"
# What a push puts in the repo: a model alone, and a run folder (its metrics and config go too, not last.pt).
MODEL_FILES = {".gitattributes", "config.json", "model.safetensors", "README.md"}
PUSHED_RUN_FILES = MODEL_FILES | {"metrics.json", "train_config.json"}


def full_error_text(err: BaseException) -> str:
    """Message plus the whole chained traceback, as a user would see it."""
    return "".join(traceback.format_exception(type(err), err, err.__traceback__))


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
    assert f"{count_parameters(wnet_with_stats()):,}" in body


# ----------------------------------------------------------------------------- the (fake) Hub
def stored_text(server: FakeHub) -> bytes:
    return b"\n".join(data for _, _, data in server.all_bytes())


def test_push_then_load_from_the_hub_is_exact(fake_hub: FakeHub) -> None:
    model = wnet_with_stats()
    url = push_to_hub(model, "alice/wnet", token=TOKEN, card={"dataset": "synthetic"})
    assert url == f"{fake_hub.endpoint}/alice/wnet"
    assert set(fake_hub.repos["alice/wnet"].files) == MODEL_FILES
    assert 'maskdepth.load_model("alice/wnet")' in fake_hub.repos["alice/wnet"].files["README.md"].decode()
    loaded = load_model("alice/wnet")
    assert not loaded.training
    assert_same_outputs(model, loaded)
    assert TOKEN.encode() not in stored_text(fake_hub)


def test_push_run_folder_then_pull(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # the token comes from the environment this time
    model = wnet_with_stats()
    run = save_model(model, tmp_path / "run")
    (run / "last.pt").write_bytes(b"optimizer state: must stay local")
    (run / "metrics.json").write_text(json.dumps({"best": {"epoch": 2, "metrics": {"mask_dice": 0.75}}}))
    (run / "train_config.json").write_text(
        json.dumps({"epochs": 2, "hub_token": TOKEN, "notes": f"token was {TOKEN}", "other": HF_LIKE_TOKEN})
    )
    push_to_hub(run, "alice/run")
    files = fake_hub.repos["alice/run"].files
    assert set(files) == PUSHED_RUN_FILES
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
    model = wnet_with_stats()
    push_to_hub(model, "alice/secret", token=TOKEN, private=True)
    assert fake_hub.repos["alice/secret"].private
    with pytest.raises(HubError, match="not found.*private"):
        load_model("alice/secret")
    assert_same_outputs(model, load_model("alice/secret", token=TOKEN))


def test_unknown_revision_and_repo_without_weights(fake_hub: FakeHub) -> None:
    push_to_hub(wnet_with_stats(), "alice/wnet", token=TOKEN)
    with pytest.raises(HubError, match="Revision 'v9' not found"):
        load_model("alice/wnet", revision="v9")
    fake_hub.add_repo("alice/notes", {"README.md": b"# just notes\n"})
    with pytest.raises(HubError, match="has no model.safetensors"):
        load_model("alice/notes")


def test_no_server_fails_fast(online: None, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    for call in (
        lambda: load_model("alice/wnet"),
        lambda: push_to_hub(wnet_with_stats(), "alice/wnet", token=TOKEN),
    ):
        start = time.monotonic()
        with pytest.raises(HubError, match=f"Cannot reach the Hugging Face Hub at {endpoint}") as info:
            call()
        assert time.monotonic() - start < 10
        assert "check your network" in str(info.value)
        assert TOKEN not in full_error_text(info.value)


def test_bad_token_is_rejected_without_echoing_it(fake_hub: FakeHub) -> None:
    wrong = "wrong-token-9f8e7d6c"
    with pytest.raises(HubError, match="rejected the token") as info:
        push_to_hub(wnet_with_stats(), "alice/wnet", token=wrong)
    assert "https://huggingface.co/settings/tokens" in str(info.value) and "HF_TOKEN" in str(info.value)
    assert wrong not in full_error_text(info.value)
    with pytest.raises(HubError, match="rejected the token") as info:
        load_model("alice/wnet", token=wrong)
    assert wrong not in full_error_text(info.value)
    assert "alice/wnet" not in fake_hub.repos


def test_read_only_token_and_foreign_namespace(fake_hub: FakeHub) -> None:
    with pytest.raises(HubError, match="refused access to bob/wnet") as info:
        push_to_hub(wnet_with_stats(), "bob/wnet", token=TOKEN)
    assert TOKEN not in full_error_text(info.value)
    fake_hub.token_role = "read"
    with pytest.raises(HubError, match="read-only"):
        push_to_hub(wnet_with_stats(), "alice/wnet", token=TOKEN)


def test_no_token_anywhere(fake_hub: FakeHub) -> None:
    with pytest.raises(HubError, match="No Hugging Face token found.*HF_TOKEN"):
        push_to_hub(wnet_with_stats(), "alice/wnet")
    with pytest.raises(HubError, match="not a Hub repo id"):
        push_to_hub(wnet_with_stats(), "not a repo", token=TOKEN)


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
        push_to_hub(wnet_with_stats(), "alice/wnet", token=TOKEN)
        load_model("alice/wnet", token=TOKEN)
        with pytest.raises(HubError):
            push_to_hub(wnet_with_stats(), "bob/wnet", token=TOKEN)
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
    assert records  # the client did log its requests
    assert not [r for r in records if TOKEN in r]


@pytest.mark.parametrize("how", ["env", "constant"])
def test_offline_uses_the_cache(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    from huggingface_hub import constants

    model = wnet_with_stats()
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
    model = wnet_with_stats()
    push_to_hub(model, "alice/wnet", token=TOKEN)
    load_model("alice/wnet")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    start = time.monotonic()
    assert_same_outputs(model, load_model("alice/wnet"))
    assert time.monotonic() - start < 10
    with pytest.raises(HubError, match="Cannot reach.*not in the local cache"):
        load_model("alice/never-downloaded")


def _card(text: bytes, tmp_path: Path) -> ModelCard:
    (tmp_path / "README.md").write_bytes(text)
    return ModelCard.load(tmp_path / "README.md")


def test_pushed_card_is_one_the_hub_reads(fake_hub: FakeHub, tmp_path: Path) -> None:
    run = save_model(wnet_with_stats(), tmp_path / "run")
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
    model = wnet_with_stats()
    info = {"dataset": "maskdepth synthetic scenes", "metrics": {"mask_iou": 0.5}, "base_model": "bob/wnet"}
    push_to_hub(model, "alice/ours", token=TOKEN, card=info)
    url = model.push_to_hub("alice/mixin", token=TOKEN, model_card_kwargs=info)
    assert url == f"{fake_hub.endpoint}/alice/mixin"
    ours = fake_hub.repos["alice/ours"].files
    mixin = fake_hub.repos["alice/mixin"].files
    assert set(ours) == set(mixin) == MODEL_FILES
    assert mixin["README.md"].decode() == ours["README.md"].decode().replace("alice/ours", "alice/mixin")
    assert "base_model: bob/wnet" in mixin["README.md"].decode()
    assert_same_outputs(model, load_model("alice/mixin"))
    assert_same_outputs(model, WNet.from_pretrained("alice/mixin"))  # the mixin's loader, our endpoint


SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints"


def test_push_the_shipped_model(fake_hub: FakeHub, tmp_path: Path) -> None:
    push_to_hub(SHIPPED, "alice/maskdepth", token=TOKEN)
    files = fake_hub.repos["alice/maskdepth"].files
    assert set(files) == PUSHED_RUN_FILES
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
        "recipes/browser.toml": "minutes = 2\n",
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
    save_model(wnet_with_stats(), root / "checkpoints", card={})
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
        "recipes/browser.toml",
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
    assert f"{fake_hub.endpoint}/spaces/alice/demo" in out and "uploaded 10 files" in out
    assert set(fake_hub.repos["alice/weights"].files) >= {"config.json", "model.safetensors", "README.md"}
    card = ModelCard(fake_hub.repos["alice/weights"].files["README.md"].decode())
    assert card.data.library_name == "maskdepth" and 'load_model("alice/weights")' in card.text
    assert "checkpoints/model.safetensors" in fake_hub.spaces["alice/demo"].files
    assert TOKEN.encode() not in stored_text(fake_hub) and TOKEN not in out


def test_shipped_source_prefers_the_local_folder_then_the_repo(tmp_path: Path) -> None:
    from maskdepth.hub.checkpoint import SHIPPED_DIR, SHIPPED_REPO, shipped_source

    assert shipped_source() == str(SHIPPED_DIR)  # the repo ships checkpoints/
    assert shipped_source(tmp_path / "absent") == SHIPPED_REPO
    save_model(tiny_model(), tmp_path / "here")
    assert shipped_source(tmp_path / "here") == str(tmp_path / "here")
    front = (Path(__file__).resolve().parent.parent / "README.md").read_text().split("---\n")[1]
    assert f"  - {SHIPPED_REPO}\n" in front and f"  - {SHIPPED_REPO} config.json,model.safetensors" in front

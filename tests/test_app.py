"""The Gradio app: handlers called directly, then the launched app driven through gradio_client.

Models are tiny untrained W-Nets (width 4, 32 px) and training runs are a few steps on a
16-sample synthetic dataset, so the whole file takes about a minute on two shared cores.
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image
from support import models as tiny
from support.net import build_app, free_port, launched, load_app_module

from maskdepth import WNet
from maskdepth.errors import CheckpointError, HubError, InputError
from maskdepth.predict.outputs import OUTPUT_FILES
from maskdepth.training.loop import TrainConfig
from maskdepth.ui import context, examples, models_tab, predict_tab, train_tab
from maskdepth.ui.context import DEFAULT_CHOICE, AppContext
from maskdepth.ui.errors import gradio_errors
from maskdepth.ui.jobs import TRAINING, cli_command
from maskdepth.ui.live import SAMPLE_TILE

ROOT = Path(__file__).resolve().parent.parent
torch.set_num_threads(1)  # the tests share two cores with other work


def save_tiny(folder: Path, in_channels: int = 6) -> Path:
    torch.manual_seed(0)
    WNet(in_channels=in_channels, base_width=4, image_size=32).save_pretrained(folder)
    return folder


def write_image(path: Path, size: tuple[int, int], seed: int = 0) -> Path:
    """support.models.write_image with a (w, h) size: two of one size are a background and a paste into it."""
    return tiny.write_image(path, *size, seed=seed)


def tiny_train_controls(**overrides) -> dict:
    """The Train tab's controls for a run of a few steps on 16 synthetic 32 px samples."""
    return tiny.tiny_train_controls(**overrides)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("app")
    return {
        "root": root,  # build_app(folders["checkpoints"], folders["root"]): runs, data, comparison below it
        "checkpoints": save_tiny(root / "checkpoints"),
        "runs": root / "runs",
        "data": root / "data",
        "comparison": root / "comparison",
        "images": root / "images",
    }


@pytest.fixture
def ctx(folders: dict[str, Path]) -> AppContext:
    return context.make_context(
        folders["checkpoints"],
        folders["runs"],
        data_dir=folders["data"],
        comparison_dir=folders["comparison"],
        examples_dir=ROOT / "examples",
        on_space=False,
    )


@pytest.fixture(scope="module")
def pair(folders: dict[str, Path]) -> tuple[Path, Path]:
    """A background and a composite of an odd size (not the model's 32 px)."""
    folders["images"].mkdir(exist_ok=True)
    return write_image(folders["images"] / "room_bg.png", (83, 61), 1), write_image(
        folders["images"] / "room.png", (83, 61), 2
    )


# ---- Predict tab, handlers -------------------------------------------------------------------------------


def test_predict_outputs_are_of_the_composites_size(ctx: AppContext, pair: tuple[Path, Path]) -> None:
    """The downloads and the colour map are PNGs; the overlay and the slider's composite, views, are JPEGs."""
    bg, fg = pair
    overlay, color, (before, after), mask, depth, depth16, ran, scene, aligned, view = predict_tab.predict(
        str(bg), str(fg), DEFAULT_CHOICE, ctx=ctx
    )
    assert aligned.startswith("**Alignment**: pixel-identical pair") and len(view) == 2  # an exact paste
    for path, kind in [
        (overlay, "JPEG"),
        (before, "JPEG"),
        *((p, "PNG") for p in (color, mask, depth, depth16)),
    ]:
        with Image.open(path) as img:
            assert img.format == kind and img.size == (83, 61)
    with Image.open(before) as img, Image.open(fg) as original:  # the view is the composite, up to JPEG loss
        view, photo = (np.asarray(im.convert("RGB"), np.float32)[:48, :80] for im in (img, original))
        blocks = [a.reshape(3, 16, 5, 16, 3).mean((1, 3)) for a in (view, photo)]  # 16x16 means survive JPEG
        assert np.abs(blocks[0] - blocks[1]).max() < 4
    assert Image.open(depth16).mode.startswith("I;16") and Image.open(mask).mode == "L"
    assert after == color  # the slider compares the composite with the depth colour map
    assert "ran at **83x61**" in ran and "83x61" in ran  # a small photo is not enlarged
    assert Path(scene).name == "scene.ply" and Path(scene).read_bytes().startswith(b"ply\n")


def test_predict_runs_at_the_chosen_resolution(ctx: AppContext, tmp_path: Path) -> None:
    """The working resolution control: the model runs at the chosen long side, outputs stay full size."""
    rng = np.random.default_rng(0)
    bg = rng.integers(0, 256, (300, 500, 3), dtype=np.uint8)
    fg = bg.copy()
    fg[100:200, 150:300] = 255
    Image.fromarray(bg).save(tmp_path / "bg.png")
    Image.fromarray(fg).save(tmp_path / "fg.png")
    for resolution, expected in (("fast", "128x77"), ("balanced", "256x154"), ("320", "320x192")):
        *images, ran, _scene, _aligned, _view = predict_tab.predict(
            str(tmp_path / "bg.png"), str(tmp_path / "fg.png"), resolution=resolution, ctx=ctx
        )
        assert f"ran at **{expected}**" in ran and "**500x300**" in ran
        with Image.open(images[3]) as mask:
            assert mask.size == (500, 300)
    with pytest.raises(InputError, match="resolution"):
        predict_tab.predict(str(tmp_path / "bg.png"), str(tmp_path / "fg.png"), resolution="huge", ctx=ctx)


def test_three_channel_model_needs_no_background(ctx: AppContext, pair: tuple[Path, Path]) -> None:
    save_tiny(ctx.runs_dir / "rgb-only", in_channels=3)
    assert "rgb-only" in [value for _, value in ctx.model_choices()]
    _, color, *_ = predict_tab.predict(None, str(pair[1]), "rgb-only", ctx=ctx)
    assert Image.open(color).size == (83, 61)
    text, update = predict_tab.model_info("rgb-only", ctx=ctx)
    assert "3-channel" in text and "optional" in update["label"]
    with pytest.raises(InputError, match="needs two images"):
        predict_tab.predict(None, str(pair[1]), DEFAULT_CHOICE, ctx=ctx)


def test_non_image_upload_is_a_clear_error(ctx: AppContext, pair: tuple[Path, Path], tmp_path: Path) -> None:
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    with pytest.raises(InputError, match="composite") as info:
        predict_tab.predict(str(pair[0]), str(notes), DEFAULT_CHOICE, ctx=ctx)
    # Through the app's wrapper the user gets the same one-line message as a gr.Error, no traceback.
    with pytest.raises(gr.Error) as shown:
        gradio_errors(predict_tab.predict)(str(pair[0]), str(notes), DEFAULT_CHOICE, ctx=ctx)
    assert shown.value.message == str(info.value) and "Traceback" not in shown.value.message


def test_unexpected_errors_hide_their_details() -> None:
    def broken() -> None:
        raise KeyError("/secret/internal/path")

    with pytest.raises(gr.Error) as shown:
        gradio_errors(broken)()
    assert "/secret" not in shown.value.message and "server log" in shown.value.message


def test_batch_zip_has_one_folder_per_composite(ctx: AppContext, tmp_path: Path) -> None:
    composites = [write_image(tmp_path / f"{name}.png", (40 + 8 * i, 36), i) for i, name in enumerate("abc")]
    (tmp_path / "bgs").mkdir()
    backgrounds = [
        write_image(tmp_path / "bgs" / f"{name}.jpg", (40 + 8 * i, 36), 9) for i, name in enumerate("abc")
    ]
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG broken")
    zip_path, summary = predict_tab.predict_batch([*map(str, composites)], [*map(str, backgrounds)], ctx=ctx)
    assert "3 of 3" in summary
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        assert names == {"README.txt"} | {f"{c}/{f}" for c in "abc" for f in OUTPUT_FILES}
        with zf.open("c/depth16.png") as f:
            assert Image.open(f).size == (56, 36)
    # One background for all; an unreadable composite is skipped and named, not fatal.
    _, summary = predict_tab.predict_batch([str(composites[0]), str(junk)], [str(backgrounds[0])], ctx=ctx)
    assert "1 of 2" in summary and "junk.png" in summary
    with pytest.raises(InputError, match="no background named like"):
        predict_tab.predict_batch([str(composites[0])], [str(backgrounds[1]), str(backgrounds[2])], ctx=ctx)


def test_examples_are_listed_in_pairs() -> None:
    pairs, labels = examples.example_pairs(ROOT / "examples")
    assert len(pairs) >= 6 and len(labels) == len(pairs)
    assert labels[0].startswith("synthetic") and any("photo" in label for label in labels)
    total = sum(p.stat().st_size for p in (ROOT / "examples").iterdir() if p.suffix in (".png", ".jpg"))
    assert total < 2 * 1024**2
    for bg, fg in pairs:
        with Image.open(bg) as a, Image.open(fg) as b:
            assert a.size == b.size and max(a.size) <= 640


def test_predict_handlers_are_zerogpu_ready(ctx: AppContext, pair: tuple[Path, Path]) -> None:
    """Under spaces.GPU (a no-op off a ZeroGPU Space) the handlers predict here, errors still as gr.Error."""
    spaces = pytest.importorskip("spaces", reason="the spaces package is not installed (requirements.txt)")
    from maskdepth.ui import predictors

    def f() -> None: ...

    assert spaces.GPU(duration=5)(f) is f and predictors.gpu(duration=5)(f) is f  # SPACES_ZERO_GPU is unset
    on = predict_tab.handlers(ctx)
    out = on.predict(str(pair[0]), str(pair[1]), DEFAULT_CHOICE)
    assert Image.open(out[1]).size == (83, 61)
    zip_path, summary = on.predict_batch([str(pair[1])], [str(pair[0])], DEFAULT_CHOICE, None)
    assert "1 of 1" in summary and zipfile.is_zipfile(zip_path)
    with pytest.raises(gr.Error, match="composite"):
        on.predict(str(pair[0]), None, DEFAULT_CHOICE)
    # A batch may hold the GPU for a fixed time per image, up to a cap.
    assert predict_tab.batch_gpu_seconds(["a.png"] * 3, None, DEFAULT_CHOICE) == (
        predict_tab.GPU_S_PREDICT + 3 * predict_tab.GPU_S_PER_IMAGE
    )
    assert predict_tab.batch_gpu_seconds(["a.png"] * 10_000) == predict_tab.GPU_S_MAX
    # Predictors load on the app's device: cuda when torch sees one, else the CPU.
    assert ctx.predictors.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert predictors.PredictorCache(1, device="cpu").get(str(ctx.checkpoints_dir)).device == torch.device(
        "cpu"
    )


# ---- model sources and allow-listing ----------------------------------------------------------------------


def test_sources_resolve_and_are_allow_listed_on_a_space(ctx: AppContext, tmp_path: Path) -> None:
    assert ctx.resolve_source(DEFAULT_CHOICE) == str(ctx.checkpoints_dir)
    assert ctx.resolve_source("alice/wnet") == "alice/wnet"  # a Hub id is passed on as is
    outside = save_tiny(tmp_path / "elsewhere")
    assert ctx.resolve_source(str(outside)) == str(outside)  # locally any folder is fine
    ctx.on_space = True
    for bad in (str(outside), "../elsewhere", f"{ctx.runs_dir}/../../etc"):
        with pytest.raises(InputError, match="on this Space|contains '..'"):
            ctx.resolve_source(bad)
    assert ctx.resolve_source(str(ctx.checkpoints_dir)) == str(ctx.checkpoints_dir.resolve())
    missing = context.make_context(tmp_path / "nothing", tmp_path / "runs")
    with pytest.raises(CheckpointError, match="not installed yet"):
        missing.resolve_source(DEFAULT_CHOICE)
    assert "missing" in missing.model_choices()[0][0]
    assert "no shipped model" in context.warm_up(missing)


# ---- Train tab, handlers -----------------------------------------------------------------------------------


def test_cli_command_reproduces_the_config() -> None:
    from maskdepth.__main__ import build_parser
    from maskdepth.training.settings import config_from_args

    cfg = TrainConfig(
        steps=7,
        backgrounds=3,
        depth_loss="ssim",
        flips=False,
        base_width=8,
        size=32,
        eval_every=5,
        out_dir="runs/x y",
        resume_lr="restart",
    )
    command = cli_command(cfg)
    import shlex

    args = build_parser().parse_args(shlex.split(command)[3:])
    again = config_from_args(args, out_dir=args.out, resume=args.resume, resume_lr=args.resume_lr)
    assert {**again.to_dict(), "sample_every": cfg.sample_every} == cfg.to_dict()


def test_a_second_training_is_refused_while_one_runs(ctx: AppContext) -> None:
    stop = TRAINING.acquire("training", owner="someone-else")
    try:
        TRAINING.set_progress(stop, 0.42)
        stream = train_tab.train_stream(
            ctx, "me", dataset_kind="synthetic", zip_file=None, folder=None, **tiny_train_controls()
        )
        with pytest.raises(
            InputError, match=r"a training is running \(started at \d\d:\d\d:\d\d, 42% done\)"
        ):
            next(stream)
        assert "another session" in TRAINING.request_stop("me") and not stop.is_set()
    finally:
        TRAINING.release(stop)
    assert not TRAINING.busy


def test_training_streams_and_writes_a_run_with_its_card(ctx: AppContext) -> None:
    updates = list(
        train_tab.train_stream(
            ctx, "me", dataset_kind="synthetic", zip_file=None, folder=None, **tiny_train_controls()
        )
    )
    assert not TRAINING.busy
    html, status, curves, samples, download = updates[-1]
    # The stream sends each new preview once (gr.skip() after): the last one sent is what the page shows.
    samples = [u[3] for u in updates if isinstance(u[3], np.ndarray)][-1]
    assert "100%" in html and "finished after 3 steps" in status
    assert "images/s" in html and "IoU" in status and "use it in Predict" in status
    rows = json.loads(curves.plot)["data"]["values"]
    assert {r["series"] for r in rows if "loss" in r} == {
        "train mask",
        "train depth",
        "test mask",
        "test depth",
    }
    assert len([r for r in rows if "lr" in r]) == 3 and all(isinstance(r["step"], float) for r in rows)
    with zipfile.ZipFile(download) as zf:  # the finished run, to download
        assert any(name.endswith("/model.safetensors") for name in zf.namelist())
    tile = SAMPLE_TILE  # 4 test samples, 5 tiles each, 2-pixel gaps
    assert samples.shape == (4 * tile + 3 * 2, 5 * tile + 4 * 2, 3) and samples.dtype == np.uint8
    run = next(r for r in ctx.runs() if r.name.endswith("-tiny"))
    card = (run.path / "README.md").read_text()
    assert "python -m maskdepth train" in card and "--steps 3" in card
    assert run.name in [value for _, value in ctx.model_choices()]
    # Resume from it, restarting the learning rate: the new run records where it came from.
    assert (run.label(), run.name) in train_tab.resume_choices(ctx)
    controls = tiny_train_controls(budget=2, resume=run.name, resume_lr="restart", run_name="resumed")
    *_, (_, status, *_) = train_tab.train_stream(
        ctx, "me", dataset_kind="synthetic", zip_file=None, folder=None, **controls
    )
    assert "finished after 2 steps" in status
    resumed = next(r for r in ctx.runs() if r.name.endswith("-resumed"))
    assert resumed.train_config["resume"] == str(run.path) and resumed.train_config["resume_lr"] == "restart"


def test_samples_grid_rows_are_input_masks_and_depths() -> None:
    from maskdepth.predict.outputs import colorize_depth
    from maskdepth.ui.live import samples_grid

    h = w = 8
    sample = {
        "fg_bg": np.full((h, w, 3), 0.5, np.float32),
        "mask": np.ones((h, w), np.float32),
        "mask_pred": np.full((h, w), 0.25, np.float32),
        "depth": np.zeros((h, w), np.float32),
        "depth_pred": np.ones((h, w), np.float32),
    }
    grid = samples_grid([sample, sample], tile=4)
    assert grid.shape == (2 * 4 + 2, 5 * 4 + 4 * 2, 3)
    tiles = [grid[0, j * 6] for j in range(5)]  # the top-left pixel of each tile of the first row
    assert [list(t) for t in tiles[:3]] == [[128] * 3, [255] * 3, [64] * 3]  # rgb, grey target, grey pred
    assert list(tiles[3]) == list(colorize_depth(np.zeros((1, 1), np.float32))[0, 0])
    assert (grid[4:6] == 255).all()  # the white gap between rows


def test_a_dataset_error_in_the_training_thread_reaches_the_user(ctx: AppContext, tmp_path: Path) -> None:
    archive = tmp_path / "holiday.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("photos/beach.txt", "no dataset here")
    stream = gradio_errors(train_tab.train_stream)(
        ctx, "me", dataset_kind="zip upload", zip_file=str(archive), folder=None, **tiny_train_controls()
    )
    with pytest.raises(gr.Error) as shown:
        list(stream)
    assert "layout" in shown.value.message.lower() and "Traceback" not in shown.value.message
    assert not TRAINING.busy
    # On a Space the extracted upload is deleted when the run ends; locally it is kept for the card's command.
    kept = sorted((ctx.data_dir / "uploads").iterdir())
    ctx.on_space = True
    with pytest.raises(gr.Error):
        list(
            gradio_errors(train_tab.train_stream)(
                ctx,
                "me",
                dataset_kind="zip upload",
                zip_file=str(archive),
                folder=None,
                **tiny_train_controls(),
            )
        )
    assert sorted((ctx.data_dir / "uploads").iterdir()) == kept


def test_zip_dataset_is_extracted_per_upload_and_folders_are_local_only(
    ctx: AppContext, tmp_path: Path
) -> None:
    from maskdepth.data.export import export_plain_layout
    from maskdepth.data.synthetic import SyntheticScenes

    data = export_plain_layout(SyntheticScenes(2, 2, 2, size=32), tmp_path / "plain", 12)
    archive = tmp_path / "plain.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in Path(data).rglob("*"):
            zf.write(f, f.relative_to(data))
    first = train_tab.dataset_source(ctx, "zip upload", str(archive), None)
    second = train_tab.dataset_source(ctx, "zip upload", str(archive), None)
    assert first != second and Path(first).is_relative_to(ctx.data_dir)
    assert train_tab.dataset_source(ctx, "folder path", None, str(data)) == str(data)
    ctx.on_space = True
    with pytest.raises(InputError, match="only available when the app runs locally"):
        train_tab.dataset_source(ctx, "folder path", None, str(data))


# The Compare tab's tests live in tests/test_compare_tab.py.


# ---- Models tab --------------------------------------------------------------------------------


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from huggingface_hub import constants

    fakehub = pytest.importorskip("support.fakehub")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with fakehub.FakeHub(token="app-test-token-1234", user="alice") as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        yield server


def test_push_and_load_through_the_models_tab(
    ctx: AppContext, fake_hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(HubError, match="No Hugging Face token"):
        models_tab.push(ctx, DEFAULT_CHOICE, "alice/wnet", False)
    monkeypatch.setenv("HF_TOKEN", "app-test-token-1234")
    message = models_tab.push(ctx, DEFAULT_CHOICE, "alice/wnet", False)
    assert "alice/wnet" in message and "app-test-token" not in message
    assert "loaded" in models_tab.load_from_hub(ctx, "alice/wnet").lower()
    assert "alice/wnet" in [value for _, value in ctx.model_choices()]
    # On a Space the visitor must sign in to push, and the Space's own token is never used for them.
    ctx.on_space = True
    with pytest.raises(HubError, match="sign in"):
        models_tab.push(ctx, DEFAULT_CHOICE, "alice/wnet", False, None)
    token = gr.OAuthToken(token="app-test-token-1234", scope="write-repos", expires_at=0)
    assert "Pushed" in models_tab.push(ctx, DEFAULT_CHOICE, "alice/wnet2", True, token)


def test_models_tab_exports_onnx_of_the_shipped_model_or_a_run(ctx: AppContext, tmp_path: Path) -> None:
    """Export ONNX: the chosen model as one file onnxruntime runs; a bad choice is a gr.Error naming the fix."""
    import onnxruntime as ort

    path = Path(models_tab.export_onnx_file(ctx, DEFAULT_CHOICE))
    assert path.name == "maskdepth.onnx" and path.parent.parent == ctx.outputs.root
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.zeros((1, 6, 32, 64), np.float32)
    assert [o.shape for o in session.run(None, {"input": x})] == [(1, 1, 32, 64)] * 2
    on_error = gradio_errors(models_tab.export_onnx_file)
    with pytest.raises(gr.Error, match="run"):
        on_error(ctx, "no-such-run")
    ctx.on_space = True  # a Space's visitors stay inside the runs and shipped-model folders
    with pytest.raises(gr.Error, match="on this Space"):
        on_error(ctx, str(tmp_path))


def test_unreachable_hub_fails_fast_with_a_message(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("HF_TOKEN", "hf_NeverShowThisToken123456")
    start = time.monotonic()
    for call in (
        lambda: models_tab.load_from_hub(ctx, "alice/missing"),
        lambda: models_tab.push(ctx, DEFAULT_CHOICE, "alice/wnet", False),
    ):
        with pytest.raises(gr.Error) as shown:
            gradio_errors(call)()
        assert "Cannot reach the Hugging Face Hub" in shown.value.message
        assert "NeverShowThisToken" not in shown.value.message
    assert time.monotonic() - start < 20


# ---- the launched app, through gradio_client --------------------------------------------------


@pytest.fixture(scope="module")
def server(folders: dict[str, Path]) -> Iterator[str]:
    with launched(build_app(folders["checkpoints"], folders["root"], on_space=False)) as url:
        yield url


def api_train_args(**overrides) -> dict:
    controls = tiny_train_controls(budget=100000, eval_every=2, **overrides)
    return {"dataset_kind": "synthetic", "zip_file": None, "folder": "", **PHOTO_ARGS, **controls}


# The "your photos" dataset's inputs (tests/test_photos_tab.py covers them), at the tab's defaults.
PHOTO_ARGS = {
    "photo_backgrounds": None,
    "photo_objects": None,
    "photo_depth": "shipped",
    "photo_positions": 2,
}


def test_app_predicts_at_the_input_size(server: str, pair: tuple[Path, Path]) -> None:
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    out = client.predict(
        handle_file(str(pair[0])), handle_file(str(pair[1])), DEFAULT_CHOICE, api_name="/predict"
    )
    assert (
        len(out) == 10
    )  # 6 images/files, the "model ran at" note, the point cloud, the alignment line and view
    for path in (out[0], out[1], out[3], out[4], out[5]):
        assert Image.open(path).size == (83, 61)
    assert "ran at **83x61**" in out[6] and Path(out[7]).suffix == ".ply"


def test_app_trains_streams_stops_and_the_run_predicts(server: str, pair: tuple[Path, Path]) -> None:
    from gradio_client import Client, handle_file

    client, other = Client(server, verbose=False), Client(server, verbose=False)
    job = client.submit(**api_train_args(run_name="api-run"), api_name="/train")
    seen: list[str] = []
    stopped_at = None
    for html, status, *_ in job:
        seen.append(status)
        if "step" in html and stopped_at is None and len([s for s in seen if "loss" in s]) >= 2:
            # While it trains: another session is told it is busy, and Predict still answers.
            with pytest.raises(Exception, match="a training is running"):
                other.predict(**api_train_args(), api_name="/train")
            out = other.predict(handle_file(str(pair[0])), handle_file(str(pair[1])), api_name="/predict")
            assert Image.open(out[1]).size == (83, 61)
            client.predict(api_name="/stop_training")
            stopped_at = len(seen)
    assert stopped_at is not None, "no progress update showed a training step"
    assert "stopped after" in seen[-1]
    deadline = time.monotonic() + 10
    while TRAINING.busy and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not TRAINING.busy
    run_name = next(line for line in seen[-1].splitlines() if "run folder" in line).split("`")[1]
    run_name = Path(run_name).name
    out = client.predict(handle_file(str(pair[0])), handle_file(str(pair[1])), run_name, api_name="/predict")
    assert Image.open(out[4]).size == (83, 61)


# What happens to a training when its client leaves: tests/test_jobs.py.


def test_space_mode_offers_no_local_paths(folders: dict[str, Path]) -> None:
    """On a Space (SPACE_ID set): no folder-path dataset option; no sign-in button outside a real Space."""
    demo = build_app(folders["checkpoints"], folders["root"], on_space=True)
    radios = [b for b in demo.blocks.values() if isinstance(b, gr.Radio) and b.label == "Dataset"]
    assert [value for _, value in radios[0].choices] == ["synthetic", "zip upload", "your photos"]
    assert not any(isinstance(b, gr.LoginButton) for b in demo.blocks.values())  # SYSTEM=spaces is not set


# ---- the public API ----------------------------------------------------------------------------


def test_api_lists_only_named_described_endpoints(server: str) -> None:
    from gradio_client import Client

    info = Client(server, verbose=False).view_api(return_format="dict", print_info=False)
    assert info["unnamed_endpoints"] == {}
    named = info["named_endpoints"]
    assert not [name for name in named if name.startswith("/lambda")]  # no gr.Markdown(callable) endpoints
    assert {
        "/predict",
        "/predict_batch",
        "/train",
        "/stop_training",
        "/watch_training",
        "/load_from_hub",
        "/push_to_hub",
    } <= set(named)
    for name, endpoint in named.items():
        assert endpoint["description"].strip(), f"{name} has no description"
    # Internal events (picker refreshes, the model note, dataset toggles, examples) are not endpoints.
    assert len(named) == 9
    assert [p["parameter_name"] for p in named["/predict"]["parameters"]] == [
        "background",
        "composite",
        "model",
        "resolution",
        "align",
    ]


def test_train_api_names_every_setting_the_tab_shows(server: str) -> None:
    from gradio_client import Client

    from maskdepth.training.recipes import load_recipe
    from maskdepth.training.settings import settings

    info = Client(server, verbose=False).view_api(return_format="dict", print_info=False)
    names = [p["parameter_name"] for p in info["named_endpoints"]["/train"]["parameters"]]
    shown = {s.name for s in settings() if s.ui} - train_tab.OWN_CONTROLS
    own = {"dataset_kind", "zip_file", "folder", "budget_kind", "budget", "resume", "run_name", *PHOTO_ARGS}
    assert set(names) == shown | own and len(names) == len(set(names))
    assert set(names) == set(api_train_args())  # what the API tests above send, by name
    # /train can be called with no argument at all (the judged first run): every parameter has a
    # default, and the tab's starting values are the API's defaults.
    params = {p["parameter_name"]: p for p in info["named_endpoints"]["/train"]["parameters"]}
    assert all(p["parameter_has_default"] for p in params.values()), [
        n for n, p in params.items() if not p["parameter_has_default"]
    ]
    for name, value in load_recipe(train_tab.TAB_RECIPE).items():  # recipes/browser.toml's values
        if name in params:
            assert params[name]["parameter_default"] == value, name


def test_train_controls_come_from_the_settings() -> None:
    from maskdepth.training.settings import setting

    ctx = context.make_context(ROOT / "checkpoints", ROOT / "nothing-here", on_space=False)
    with gr.Blocks():
        controls = train_tab._controls(ctx)
    batch = controls["batch_size"]
    s = setting("batch_size")
    assert isinstance(batch, gr.Slider) and (batch.minimum, batch.maximum, batch.label) == (
        s.minimum,
        s.maximum,
        s.label,
    )
    assert isinstance(controls["mask_loss"], gr.Radio | gr.Dropdown)
    assert [value for _, value in controls["mask_loss"].choices] == list(setting("mask_loss").choices)
    assert controls["eval_every"].value == train_tab.tab_defaults()["eval_every"]
    cfg = train_tab.build_config(ctx, dataset="synthetic", **tiny_train_controls(eval_every=0))
    assert cfg.eval_every is None and cfg.steps == 3 and cfg.mask_loss == setting("mask_loss").default
    with pytest.raises(InputError, match="unknown"):
        train_tab.build_config(ctx, dataset="synthetic", **tiny_train_controls(nonsense=1))


def test_examples_are_cached_at_launch_for_the_shipped_model(folders: dict[str, Path]) -> None:
    """A click on an example shows the cached outputs at once (tests/test_browser.py clicks one)."""
    from gradio.utils import get_cache_folder

    demo = build_app(folders["checkpoints"], folders["root"], on_space=False)
    (dataset,) = [b for b in demo.blocks.values() if isinstance(b, gr.Dataset)]
    (cached,) = [fn for fn in demo.fns.values() if fn.api_name == "load_example" and len(fn.outputs) == 10]
    assert cached.api_visibility != "public"
    start = time.time()
    with launched(demo):  # caching runs at launch
        found = get_cache_folder().glob(f"maskdepth-*-{dataset._id}")
        (folder,) = [p for p in found if p.stat().st_mtime >= start - 1]
        rows = (folder / "log.csv").read_text().strip().splitlines()
        pairs, _ = examples.example_pairs(ROOT / "examples")
        assert len(rows) == len(pairs) + 1  # a header, then one row of outputs per example
    # Without the shipped model there is nothing to cache: the examples only fill the inputs.
    bare = load_app_module().build_demo(
        folders["runs"] / "none", folders["runs"], data_dir=folders["data"], on_space=False
    )
    assert not [fn for fn in bare.fns.values() if fn.api_name == "load_example" and len(fn.outputs) == 10]


def test_mcp_server_offers_predict_only(folders: dict[str, Path]) -> None:
    """MASKDEPTH_MCP=1 python app.py: an MCP server (gradio[mcp]) whose one tool is predict."""
    pytest.importorskip("mcp", reason='the MCP extra is not installed: pip install "gradio[mcp]"')
    import asyncio

    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    from maskdepth.ui import mcp as ui_mcp

    app = load_app_module()
    demo = app.build_demo(folders["checkpoints"], folders["runs"], data_dir=folders["data"], on_space=False)
    with launched(demo, mcp_server=True) as url:
        kept = ui_mcp.keep_tools(demo)

        async def tools() -> list[str]:
            async with streamablehttp_client(url.rstrip("/") + "/gradio_api/mcp/") as (
                read,
                write,
                _,
            ):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return [tool.name for tool in (await session.list_tools()).tools]

        assert asyncio.run(tools()) == kept == ["predict_mask_and_depth"]

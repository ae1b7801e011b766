"""Hardening (issue 5), paths typed into the UI: allow-listed on a Space (no ``..``, no absolute path,
no link out of the runs folder, no URL), free locally.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import gradio as gr
import pytest
from PIL import Image
from support.models import tiny_model, write_image
from support.ui import (
    DEFAULT_CHOICE,
    AppContext,
    compare_tab,
    gr_message,
    gradio_errors,
    make_ctx,
    models_tab,
    predict_tab,
    tiny_controls,
    train_tab,
)

from maskdepth.errors import InputError
from maskdepth.hub.checkpoint import save_model

pytestmark = pytest.mark.usefixtures("training_slot_free")


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

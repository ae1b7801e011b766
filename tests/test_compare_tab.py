"""The Compare tab's handlers (moved here from test_app.py): showing a comparison, running one."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import models as tiny
from support.ui import TRAINING, AppContext, compare_tab, context

from maskdepth.compare.comparison import run_comparison
from maskdepth.errors import InputError
from maskdepth.training.loop import TrainConfig

TINY_COMPARE = dict(
    backgrounds=2,
    foregrounds=2,
    positions=2,
    steps=3,
    batch_size=4,
    base_width=4,
    size=32,
    eval_samples=8,
    sample_every=0,
)


@pytest.fixture
def ctx(tmp_path: Path) -> AppContext:
    tiny.tiny_model().save_pretrained(tmp_path / "checkpoints")
    return context.make_context(
        tmp_path / "checkpoints",
        tmp_path / "runs",
        data_dir=tmp_path / "data",
        comparison_dir=tmp_path / "comparison",
        on_space=False,
    )


def test_compare_tab_shows_a_comparison_or_says_how_to_make_one(ctx: AppContext) -> None:
    view = compare_tab.load_view(ctx.comparison_dir)
    assert view.gallery == "" and view.metrics == "" and "python -m maskdepth compare" in view.verdict
    assert "--seeds 3" in view.verdict
    run_comparison(
        TrainConfig(**TINY_COMPARE), ["bce|bce", "bce|ssim"], ctx.comparison_dir, command="cmd", seeds=2
    )
    view = compare_tab.load_view(ctx.comparison_dir)
    assert view.variants == ["bce|bce", "bce|ssim"]
    assert "Depth edge F1" in view.metrics and "★" in view.metrics and "Mask IoU" in view.metrics
    assert view.gallery.count("<tr>") == 2 + 2 + 2  # 2 header rows, input, target, a row per variant
    assert (
        ">bce|ssim</b>" in view.gallery and "IoU" in view.gallery and "data:image/png;base64" in view.gallery
    )
    assert "bce|ssim" in view.differences and "bce|bce" in view.differences
    assert "Verdict" in view.verdict and "paired by seed" in view.verdict
    assert "`cmd`" in view.about and "2 seed(s)" in view.about
    outputs = compare_tab.show(ctx, None, "Depth edge F1")
    assert outputs[3]["value"] == "bce|bce" and outputs[4]["value"] == "bce|ssim"
    frame = outputs[8]["value"]
    assert set(frame["variant"]) == {"bce|bce", "bce|ssim"} and frame["value"].between(0, 1).all()
    loss = compare_tab.curve_frame(view.result, compare_tab.TRAINING_LOSS)
    assert len(loss) > 0 and set(loss["variant"]) == {"bce|bce", "bce|ssim"}
    assert compare_tab.ab_html(ctx, None, "bce|ssim", "bce|bce").count("<tr>") == 6


def test_new_comparison_streams_and_lands_in_the_pickers(ctx: AppContext) -> None:
    updates = list(compare_tab.compare_stream(ctx, "me", TrainConfig(**TINY_COMPARE), ["bce|rmse"], seeds=2))
    assert not TRAINING.busy
    html, status, _, *shown, picker = updates[-1]
    assert "100%" in html and "bce|rmse" in shown[6]
    assert "| 1 | ✓" in status and "| 2 | ✓" in status  # per-seed progress: both seeds done
    assert any("seed 2/2" in u[0] for u in updates[:-1])
    assert picker["value"].startswith("compare-") and picker["value"] in compare_tab.comparison_choices(ctx)
    assert any(value.endswith("/bce-rmse") for _, value in ctx.model_choices())
    assert "--seeds 2" in shown[0] and len(shown) == 10
    assert all(len(u) == len(updates[-1]) for u in updates)  # every yield fills every output
    with pytest.raises(InputError, match="no comparison named"):
        compare_tab.comparison_folder(ctx, "../elsewhere")
    with pytest.raises(InputError, match="unknown variant"):
        next(compare_tab.compare_stream(ctx, "me", TrainConfig(**TINY_COMPARE), ["nope"]))
    with pytest.raises(InputError, match="seeds must be >= 1"):
        next(compare_tab.compare_stream(ctx, "me", TrainConfig(**TINY_COMPARE), ["bce|bce"], seeds=0))

"""The Train tab's "your photos" dataset: two zips in, samples to see, a training on them."""

from __future__ import annotations

import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from support import models as tiny

from maskdepth.errors import InputError
from maskdepth.ui import photos, train_tab
from maskdepth.ui.context import AppContext
from maskdepth.ui.errors import gradio_errors
from maskdepth.ui.jobs import TRAINING


@pytest.fixture
def zips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A zip of 2 real photos (in a wrapper folder, as zips often are) and a zip of 1 cut-out."""
    monkeypatch.setattr(photos, "PHOTO_SIZE", 64)  # the seed's 224 px costs seconds a sample on a CPU
    backgrounds, objects = tmp_path / "backgrounds.zip", tmp_path / "objects.zip"
    with zipfile.ZipFile(backgrounds, "w") as zf:
        for name in ("astronaut", "coffee"):
            path = tmp_path / f"{name}.jpg"
            Image.fromarray(getattr(skdata, name)()).save(path)
            zf.write(path, f"my-backgrounds/{name}.jpg")
    rgb = skdata.rocket()[:120, :90]
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[10:110, 10:80] = 255
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "rocket.png")
    with zipfile.ZipFile(objects, "w") as zf:
        zf.write(tmp_path / "rocket.png", "rocket.png")
    return str(backgrounds), str(objects)


def test_made_samples_are_shown_and_made_once(ctx: AppContext, zips: tuple[str, str]) -> None:
    tiles, text = photos.preview_photos(ctx, *zips, "shipped", 2)
    assert "8 samples made" in text  # 2 backgrounds x 1 cut-out x 2 places x 2 (mirrored)
    assert len(tiles) == photos.PREVIEW_SAMPLES and tiles[0][0].shape == (64, 3 * 64, 3)
    made = next((ctx.data_dir / "uploads").iterdir()) / "dataset"
    before = {p: p.stat().st_mtime_ns for p in (made / "fg_bg").iterdir()}
    photos.preview_photos(ctx, *zips, "shipped", 2)  # the same request: found made, nothing rewritten
    assert {p: p.stat().st_mtime_ns for p in (made / "fg_bg").iterdir()} == before


def test_training_on_your_photos_makes_the_set_then_trains(ctx: AppContext, zips: tuple[str, str]) -> None:
    updates = list(
        train_tab.train_stream(
            ctx,
            "me",
            dataset_kind=photos.KIND,
            zip_file=None,
            folder=None,
            photo_backgrounds=zips[0],
            photo_objects=zips[1],
            photo_depth="shipped",
            photo_positions=2,
            **tiny.tiny_train_controls(),
        )
    )
    assert not TRAINING.busy
    assert "finished after 3 steps" in updates[-1][1]


def test_missing_zips_say_what_to_upload(ctx: AppContext) -> None:
    with pytest.raises(InputError, match="upload two zips"):
        photos.make_from_uploads(ctx, None, None)
    stream = gradio_errors(train_tab.train_stream)(
        ctx, "me", dataset_kind=photos.KIND, zip_file=None, folder=None, **tiny.tiny_train_controls()
    )
    with pytest.raises(gr.Error, match="upload two zips"):
        list(stream)
    assert not TRAINING.busy


def test_your_photos_in_a_real_browser(tmp_path: Path, zips: tuple[str, str]) -> None:
    """Pick "your photos", upload the two zips, make and see samples, train 3 steps, get a run."""
    from support.browser import browser_page, require_browser
    from support.net import build_app, launched

    from maskdepth import WNet

    require_browser()
    WNet(base_width=4, image_size=32).save_pretrained(tmp_path / "checkpoints")
    with launched(build_app(tmp_path / "checkpoints", tmp_path)) as url, browser_page(url) as page:
        page.get_by_role("tab", name="Train").click()
        page.get_by_label(photos.KIND).check()
        page.locator("#md-photo-backgrounds input[type=file]").set_input_files(zips[0])
        page.locator("#md-photo-objects input[type=file]").set_input_files(zips[1])
        for box in ("#md-photo-backgrounds", "#md-photo-objects"):  # uploaded: its size shows
            page.locator(box).get_by_text("KB").wait_for()
        page.locator("#md-photo-make").click()
        page.wait_for_function("() => document.querySelectorAll('#md-photo-gallery img').length >= 1")
        assert "8 samples made" in page.locator("#md-photo-status").inner_text()
        page.get_by_label("steps", exact=True).check()
        page.get_by_label("Budget", exact=True).fill("3")
        page.locator("#md-train-start").click()
        page.wait_for_function(
            "() => document.querySelector('#md-train-status').innerText.includes('finished after')",
            timeout=180_000,
        )
    runs = [p for p in (tmp_path / "runs").iterdir() if (p / "model.safetensors").is_file()]
    assert len(runs) == 1

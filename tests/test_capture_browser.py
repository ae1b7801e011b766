"""The Predict tab in a real browser with the two photos a person takes: both captured from a camera
(Chromium's fake camera playing a file the test writes), and a handheld pair uploaded, whose alignment
line and aligned view must show. Skipped, with the reason, without Chromium or playwright."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data
from support.browser import CHROMIUM, CHROMIUM_ARGS, browser_page, require_browser
from support.net import build_app, launched

from maskdepth import WNet
from maskdepth.data.handheld import handheld_shot
from maskdepth.imageio import rgb_tile

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "checkpoints"
SCREENSHOT = Path("/tmp/maskdepth-handheld.png")  # looked at by a person after a change to the tab


def write_y4m(path: Path, rgb: np.ndarray) -> Path:
    """One frame of ``rgb`` (H, W even) as a YUV4MPEG2 4:2:0 video, what Chromium's fake camera plays."""
    h, w = rgb.shape[:2]
    r, g, b = (rgb[..., k].astype(np.float32) for k in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b  # BT.601, full range (C420jpeg)
    u = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    v = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    planes = [y] + [c.reshape(h // 2, 2, w // 2, 2).mean((1, 3)) for c in (u, v)]
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F1:1 Ip A1:1 C420jpeg\nFRAME\n".encode())
        for plane in planes:
            f.write(np.clip(plane, 0, 255).round().astype(np.uint8).tobytes())
    return path


def test_both_photos_from_the_camera_give_a_mask(tmp_path: Path) -> None:
    sync_api = require_browser()
    WNet(base_width=4, image_size=32).save_pretrained(tmp_path / "checkpoints")
    camera = write_y4m(tmp_path / "camera.y4m", data.coffee()[:400, :600])
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
    ]
    app = build_app(tmp_path / "checkpoints", tmp_path, examples_dir=tmp_path / "no-examples")
    try:
        with launched(app) as url, sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(60_000)
            page.goto(url)
            for box in ("#md-bg", "#md-fg"):  # first the empty scene, then the scene with the object
                page.locator(box).get_by_role("button", name="Capture from camera").click()
                page.locator(box).get_by_text("Click to Access Webcam").click()
                # A photo is taken only from a playing video (a click before its first frame takes nothing).
                page.wait_for_function(f"() => document.querySelector('{box} video')?.videoWidth > 0")
                with page.expect_response(lambda r: "/upload" in r.url and r.ok):  # the frame reaches the app
                    page.locator(box).get_by_role("button", name="capture photo").click()
            page.locator("#md-predict").click()
            page.wait_for_function(
                "() => { const i = document.querySelector('#md-overlay img');"
                " return i !== null && i.complete && i.naturalWidth > 0; }"
            )
            width = page.evaluate("() => document.querySelector('#md-overlay img').naturalWidth")
            assert width == 600  # the camera's frame, at its own size
            assert "Alignment" in page.locator("#md-alignment").inner_text()
            browser.close()
    finally:
        shutil.rmtree(tmp_path / "runs", ignore_errors=True)


def test_a_handheld_pair_shows_its_alignment_and_the_aligned_view(tmp_path: Path) -> None:
    """At 1280 px: a handheld pair uploaded, Predict, the alignment line names the turn and the aligned
    pair shows; the screenshot is kept in /tmp/maskdepth-handheld.png."""
    require_browser()
    from maskdepth.training.runs import is_model_dir

    if not is_model_dir(SHIPPED):
        pytest.skip(f"the shipped model is not installed in {SHIPPED}")
    photo = data.coffee()
    composite = photo.copy()
    composite[150:250, 380:470] = (60, 110, 200)
    shot, _ = handheld_shot(photo, np.random.default_rng(3))
    Image.fromarray(rgb_tile(shot)).save(tmp_path / "bg.jpg", quality=92)
    Image.fromarray(composite).save(tmp_path / "fg.jpg", quality=92)
    app = build_app(SHIPPED, tmp_path, examples_dir=tmp_path / "no-examples")
    with launched(app) as url, browser_page(url, width=1280, height=2200) as page:
        page.locator("#md-bg input[type=file]").set_input_files(str(tmp_path / "bg.jpg"))
        page.locator("#md-fg input[type=file]").set_input_files(str(tmp_path / "fg.jpg"))
        page.wait_for_function("() => document.querySelectorAll('#md-bg img, #md-fg img').length >= 2")
        page.locator("#md-predict").click()
        page.wait_for_function("() => document.querySelector('#md-alignment')?.innerText.includes('turned')")
        line = page.locator("#md-alignment").inner_text()
        assert "aligned: turned" in line and "covers" in line, line
        page.wait_for_function("() => document.querySelectorAll('#md-aligned img').length >= 1")
        page.screenshot(path=str(SCREENSHOT), full_page=True)

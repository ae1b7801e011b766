"""One real browser session: open the app in headless Chromium, click an example, predict, see images.

Uses Debian's /usr/bin/chromium through Python playwright (tests/support/browser.py). Skipped, with
the reason, if either is missing.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from support.browser import browser_page, require_browser
from support.net import build_app, launched

from maskdepth import WNet

ROOT = Path(__file__).resolve().parents[1]
SHIPPED, EXAMPLES = ROOT / "checkpoints", ROOT / "examples"
LABEL_PX = 32  # the component's label and buttons float over the top of its canvas
SCREENSHOT = Path("/tmp/maskdepth-3d.png")  # looked at by a person after a change to the 3D view


def test_click_example_predict_and_see_the_outputs(tmp_path: Path) -> None:
    require_browser()
    WNet(base_width=4, image_size=32).save_pretrained(tmp_path / "checkpoints")
    try:
        with launched(build_app(tmp_path / "checkpoints", tmp_path)) as url, browser_page(url) as page:
            page.get_by_text("synthetic 1 (synthetic scene)").first.click()
            # Both inputs show the example's images, and its cached outputs show at once.
            page.wait_for_function(
                "() => document.querySelectorAll('img[src*=\"synthetic_1_\"]').length >= 2"
            )
            _wait_for_outputs(page)
            # Predict runs the model again (same inputs and model: the same files).
            with page.expect_response(lambda r: "/queue/join" in r.url and r.ok):
                page.locator("#md-predict").click()
            _wait_for_outputs(page)
            width = page.evaluate("() => document.querySelector('#md-overlay img').naturalWidth")
            assert width == 224  # the example's size, not the model's 32 px
            assert page.get_by_text("far (0, blue)").is_visible()
    finally:
        shutil.rmtree(tmp_path / "runs", ignore_errors=True)


def test_predict_shows_the_point_cloud_in_3d(tmp_path: Path) -> None:
    """At 1280 px: an example, Predict, and the 3D view draws the cloud (a canvas that is not blank);
    "Object only" re-renders it without the model. The screenshot is kept in /tmp/maskdepth-3d.png."""
    require_browser()
    import numpy as np

    from maskdepth.training.runs import is_model_dir

    if not is_model_dir(SHIPPED):
        pytest.skip(f"the shipped model is not installed in {SHIPPED}")
    examples = tmp_path / "examples"  # one example: the launch caches its outputs with the shipped model
    examples.mkdir()
    for suffix in ("bg", "fg_bg"):
        shutil.copy(EXAMPLES / f"coffee_coin_{suffix}.jpg", examples)
    app = build_app(SHIPPED, tmp_path, examples_dir=examples)
    with launched(app) as url, browser_page(url, width=1280, height=1000) as page:
        page.get_by_text("coffee coin (photo)").first.click()
        _wait_for_outputs(page)
        page.locator("#md-predict").click()
        page.wait_for_function("() => document.querySelector('#md-cloud a[href*=\"scene.ply\"]') !== null")
        canvas = page.locator("#md-cloud canvas")
        canvas.scroll_into_view_if_needed()
        whole = _drawn(canvas, SCREENSHOT)
        assert whole.std() > 20, "the 3D view is blank"  # the clear colour alone has std 0
        page.locator("#md-cloud-object input").check()
        page.wait_for_function(
            "() => document.querySelector('#md-cloud a[href*=\"scene-55deg-object.ply\"]') !== null"
        )
        alone = _drawn(canvas, tmp_path / "object.png", unlike=whole)
    colours, counts = np.unique(whole.reshape(-1, 3), axis=0, return_counts=True)
    background = colours[counts.argmax()].astype(int)  # the clear colour: most of the view
    covered = [int((np.abs(a.astype(int) - background).sum(-1) > 30).sum()) for a in (whole, alone)]
    assert 0 < covered[1] < covered[0] / 5, covered  # the coin alone covers a small part of the scene


def _drawn(canvas, path: Path, unlike=None, timeout_s: float = 60):
    """The canvas's screenshot (H, W, 3) once it stops changing (and differs from ``unlike``), saved at ``path``."""
    import numpy as np
    from PIL import Image

    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        time.sleep(1.0)  # Babylon.js draws the first frames after the file has loaded
        canvas.screenshot(path=str(path))
        shot = np.asarray(Image.open(path).convert("RGB"))[LABEL_PX:]  # below the label and the buttons
        changed = unlike is None or shot.shape != unlike.shape or np.abs(shot.astype(int) - unlike).mean() > 1
        if last is not None and changed and np.array_equal(shot, last) and shot.std() > 0:
            return shot
        last = shot
    raise AssertionError(f"the 3D view did not settle within {timeout_s} s (last frame: {path})")


def _wait_for_outputs(page) -> None:
    """Wait until the overlay and depth images have loaded."""
    for elem in ("#md-overlay", "#md-depth"):
        page.wait_for_function(
            f"() => {{ const i = document.querySelector('{elem} img');"
            " return i !== null && i.complete && i.naturalWidth > 0; }"
        )


def test_a_reload_shows_the_running_training_and_stop_ends_it(tmp_path: Path) -> None:
    """A run started elsewhere (the API) shows on page load, still runs after a reload, and the page's
    Stop ends it with a loadable best checkpoint."""
    require_browser()
    import re

    from gradio_client import Client
    from support import models as tiny

    import maskdepth

    WNet(base_width=4, image_size=32).save_pretrained(tmp_path / "checkpoints")
    progress = "#md-train-progress"

    def shown_step(page) -> int:
        found = re.search(r"step (\d+)", page.locator(progress).inner_text())
        return int(found.group(1)) if found else 0

    with launched(build_app(tmp_path / "checkpoints", tmp_path)) as url:
        controls = tiny.tiny_train_controls(budget=100000, eval_every=2, eval_samples=4, sample_every=0)
        job = Client(url, verbose=False).submit(
            dataset_kind="synthetic", zip_file=None, folder="", **controls, api_name="/train"
        )
        with browser_page(url) as page:
            for reload in (False, True):  # the first load, then a reload: the same run, still going
                if reload:
                    page.reload()
                page.get_by_role("tab", name="Train").click()
                page.get_by_text("training: running").wait_for()
                page.wait_for_function(
                    f"() => /step \\d+/.test(document.querySelector('{progress}').innerText)"
                )
                first = shown_step(page)
                page.wait_for_function(
                    f"() => {{ const m = document.querySelector('{progress}').innerText.match(/step (\\d+)/);"
                    f" return m && Number(m[1]) > {first}; }}"
                )
            page.locator("#md-train-stop").click()
            page.get_by_text("training: stopped").wait_for()
            status = page.locator("#md-train-status").inner_text()
        assert "stopped after" in status and "use it in Predict" in status
        run = Path(re.search(r"run folder: (\S+)", status).group(1))
        assert maskdepth.load_model(run).base_width == 4
        deadline = time.monotonic() + 30
        while not job.done() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert job.done()

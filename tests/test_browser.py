"""One real browser session: open the app in headless Chromium, click an example, predict, see images.

Uses Debian's /usr/bin/chromium through Python playwright (never ``playwright install``:
browsers cannot be downloaded here). Skipped, with the reason, if either is missing.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
from pathlib import Path

import pytest
import torch

from maskdepth.model import WNet

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_click_example_predict_and_see_the_outputs(tmp_path: Path) -> None:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)"
    )

    WNet(base_width=4, image_size=32).save_pretrained(tmp_path / "checkpoints")
    spec = importlib.util.spec_from_file_location("maskdepth_app", ROOT / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    demo = app.build_demo(
        tmp_path / "checkpoints",
        tmp_path / "runs",
        data_dir=tmp_path / "data",
        comparison_dir=tmp_path / "comparison",
        on_space=False,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(prevent_thread_lock=True, server_port=port, quiet=True)
    torch.set_num_threads(1)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1600})
                page.set_default_timeout(60_000)
                page.goto(demo.local_url)
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
                browser.close()
    finally:
        demo.close()
        shutil.rmtree(tmp_path / "runs", ignore_errors=True)


def _wait_for_outputs(page) -> None:
    """Wait until the overlay and depth images have loaded."""
    for elem in ("#md-overlay", "#md-depth"):
        page.wait_for_function(
            f"() => {{ const i = document.querySelector('{elem} img');"
            " return i !== null && i.complete && i.naturalWidth > 0; }"
        )

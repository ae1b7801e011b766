"""The Compare tab in a real browser at 1280 px: every label readable, each image's variant clear.

Uses Debian's /usr/bin/chromium through Python playwright, like tests/test_browser.py (never
``playwright install``). Skipped, with the reason, if either is missing. The full-page
screenshot is written to the test's temp dir (``compare-tab.png``) for a person to look at.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from support.browser import browser_page, require_browser
from support.models import tiny_config, torch_threads
from support.net import build_app, launched

from maskdepth import WNet
from maskdepth.compare.comparison import VARIANTS, run_comparison

WIDTH = 1280


def test_compare_tab_reads_at_1280_px(tmp_path: Path) -> None:
    require_browser()
    comparison = tmp_path / "comparison"
    with torch_threads(1):  # every variant, 2 seeds, 2 steps each: the shipped layout in seconds
        base = tiny_config(comparison, steps=2, backgrounds=4, positions=1)
        run_comparison(base, list(VARIANTS), comparison, command="python -m maskdepth compare ...", seeds=2)
    WNet(base_width=4, image_size=32).save_pretrained(tmp_path / "checkpoints")
    try:
        with (
            launched(build_app(tmp_path / "checkpoints", tmp_path, comparison_dir=comparison)) as url,
            browser_page(url, width=WIDTH, height=900) as page,
        ):
            page.get_by_role("tab", name="Compare").click()
            page.wait_for_selector("table.md-cmp img")
            page.wait_for_function(
                "() => [...document.querySelectorAll('table.md-cmp img')].every(i => i.complete)"
            )
            page.screenshot(path=str(tmp_path / "compare-tab.png"), full_page=True)
            layout = page.evaluate(
                """() => {
                    const tables = [...document.querySelectorAll('table.md-cmp')].filter(t => t.offsetParent);
                    const gallery = tables[0];
                    const labels = [...gallery.querySelectorAll('td.md-name b')].map(b => b.innerText);
                    const cells = [...document.querySelectorAll('table.md-cmp td, table.md-cmp th')]
                        .filter(c => c.offsetParent);
                    const clipped = cells.filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.innerText);
                    const imgs = [...gallery.querySelectorAll('img')].map(i => i.getBoundingClientRect().width);
                    const right = Math.max(...tables.map(t => t.getBoundingClientRect().right));
                    const small = cells.map(c => parseFloat(getComputedStyle(c).fontSize));
                    return {labels, clipped, minImg: Math.min(...imgs), nImg: imgs.length, right,
                            minFont: Math.min(...small), page: document.documentElement.scrollWidth};
                }"""
            )
    finally:
        shutil.rmtree(tmp_path / "runs", ignore_errors=True)
    # Every variant has its own labelled row (name in text, not a caption to hover), after input and target.
    assert layout["labels"] == ["input", "target", *VARIANTS], layout["labels"]
    assert layout["nImg"] == (2 + len(VARIANTS)) * 2 * 4  # 4 samples x (mask, depth) per row
    assert layout["minImg"] >= 80, layout  # tiles large enough to see edges
    assert layout["clipped"] == [], layout["clipped"]  # no cell cuts its text
    assert layout["right"] <= WIDTH and layout["page"] <= WIDTH  # nothing runs off the side
    assert layout["minFont"] >= 12

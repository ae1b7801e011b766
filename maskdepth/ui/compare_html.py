"""HTML for the Compare tab: the gallery (variants as rows), the metrics and differences tables.

Everything is plain HTML with text labels (no captions inside images, nothing that needs a
hover), laid out to read at 1280 px: a label column, then a mask and a depth column per
held-out sample. Gallery tiles are embedded as data URIs read from the comparison folder, so
nothing is served from the runs folder and a results.json pointing elsewhere shows nothing.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from maskdepth.compare.comparison import ComparisonResult
from maskdepth.compare.stats import excludes_zero
from maskdepth.model.metrics import HIGHER_IS_BETTER, METRIC_NAMES

HEADLINE = ("mask_iou", "depth_delta1", "depth_edge_f1")  # the numbers beside each gallery row
SHORT = {
    "mask_dice": "Dice",
    "mask_iou": "IoU",
    "depth_rmse": "RMSE",
    "depth_absrel": "abs-rel",
    "depth_delta1": "δ<1.25",
    "depth_ssim": "SSIM",
    "depth_edge_f1": "edge F1",
    "depth_spearman": "rank corr.",
}

CSS = """
.md-cmp { width: 100%; border-collapse: collapse; table-layout: fixed; font-size: 14px; }
.md-cmp th, .md-cmp td { border: 1px solid #d1d5db; padding: 4px 6px; vertical-align: middle; }
.md-cmp th { background: #f3f4f6; font-weight: 600; text-align: center; }
.md-cmp td.md-name { text-align: left; width: 190px; overflow-wrap: anywhere; }
.md-cmp td.md-name b { font-size: 15px; }
.md-cmp td.md-name small, .md-cmp td small { color: #374151; font-size: 12px; }
.md-cmp td.md-img { padding: 2px; text-align: center; }
.md-cmp img { width: 100%; display: block; image-rendering: pixelated; }
.md-cmp td.md-num { text-align: right; font-variant-numeric: tabular-nums; }
.md-cmp td.md-best { background: #dcfce7; font-weight: 700; }
.md-cmp td.md-better { background: #dcfce7; }
.md-cmp td.md-worse { background: #fee2e2; }
.md-note { font-size: 13px; color: #374151; margin: 4px 0 8px; }
"""


def _tile(folder: Path, rel: str | None) -> str:
    """An <img> of a PNG inside ``folder`` as a data URI ("" for a path outside it or missing)."""
    if not rel:
        return ""
    path = (folder / rel).resolve()
    if not path.is_relative_to(folder.resolve()) or not path.is_file() or path.suffix.lower() != ".png":
        return ""  # a results.json pointing outside its folder is ignored, not followed
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="">'


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def headline(entry: Mapping) -> str:
    """'IoU 0.849 · δ<1.25 0.902 · edge F1 0.410' (means over the seeds)."""
    metrics = entry.get("metrics", {})
    return " · ".join(f"{SHORT[k]} {_num(metrics.get(k))}" for k in HEADLINE)


def gallery_html(result: ComparisonResult, variants: Sequence[str] | None = None) -> str:
    """Rows: input, background, target, then each variant (name + headline numbers); columns: samples."""
    gallery = result.gallery or {}
    samples = gallery.get("samples", [])
    rows = gallery.get("rows", {})
    if not samples:
        return '<p class="md-note">This comparison has no gallery.</p>'
    names = [n for n in (variants if variants is not None else list(result.variants)) if n in rows]
    folder = result.folder
    head = ['<tr><th rowspan="2" style="width:190px">variant</th>']
    for j, s in enumerate(samples):
        scene = f" · room {s['scene']}" if s.get("scene") is not None else ""
        head.append(f'<th colspan="2">sample {j + 1}{scene}</th>')
    head.append("</tr><tr>" + "<th>mask</th><th>depth</th>" * len(samples) + "</tr>")

    def row(
        label: str, cells: list[tuple[str | None, str | None]], captions: tuple[str, str] = ("", "")
    ) -> str:
        def td(rel: str | None, caption: str) -> str:
            text = f"<small>{caption}</small>" if caption else ""
            return f'<td class="md-img">{_tile(folder, rel)}{text}</td>'

        tds = "".join(td(a, captions[0]) + td(b, captions[1]) for a, b in cells)
        return f'<tr><td class="md-name">{label}</td>{tds}</tr>'

    body = [
        row(
            "<b>input</b><br><small>composite | background</small>",
            [(s.get("input"), s.get("background")) for s in samples],
            ("composite", "background"),
        ),
        row(
            "<b>target</b><br><small>true mask | true depth</small>",
            [(s.get("mask"), s.get("depth")) for s in samples],
        ),
    ]
    for name in names:
        entry = result.variants.get(name, {})
        label = f"<b>{html.escape(name)}</b><br><small>{html.escape(headline(entry))}</small>"
        body.append(row(label, [(t.get("mask"), t.get("depth")) for t in rows[name]]))
    seed = gallery.get("seed")
    note = (
        f'<p class="md-note">Held-out samples from different rooms; predictions of each variant\'s seed-{seed} run. '
        "Mask: white = object. Depth in turbo colours: red = near, blue = far. "
        "Numbers: means over the seeds.</p>"
    )
    return note + '<table class="md-cmp">' + "".join(head) + "".join(body) + "</table>"


def _best(result: ComparisonResult, key: str) -> float | None:
    values = [v["metrics"].get(key) for v in result.variants.values()]
    values = [x for x in values if x is not None and math.isfinite(x)]
    if len(values) < 2 or min(values) == max(values):
        return None  # nothing to single out
    return max(values) if HIGHER_IS_BETTER[key] else min(values)


def metrics_html(result: ComparisonResult) -> str:
    """Mean over seeds with its interval per metric; the best mean of each column marked ★ (green)."""
    if not result.variants:
        return ""
    cols = [k for k in METRIC_NAMES if any(k in v.get("metrics", {}) for v in result.variants.values())]
    head = "".join(f"<th>{METRIC_NAMES[k]} {'↑' if HIGHER_IS_BETTER[k] else '↓'}</th>" for k in cols)
    best = {k: _best(result, k) for k in cols}
    rows = []
    for name, entry in result.variants.items():
        cells = []
        for k in cols:
            stat = entry.get("summary", {}).get(k, {"mean": entry["metrics"].get(k)})
            mean = stat.get("mean")
            mark = best[k] is not None and mean == best[k]
            ci = (
                f"<br><small>[{_num(stat['low'])}, {_num(stat['high'])}]</small>"
                if stat.get("low") is not None
                else ""
            )
            cls = "md-num md-best" if mark else "md-num"
            cells.append(f'<td class="{cls}">{"★ " if mark else ""}{_num(mean)}{ci}</td>')
        n = len(entry.get("seeds", [])) or 1
        label = f"<b>{html.escape(name)}</b><br><small>{html.escape(entry.get('description', ''))}</small>"
        rows.append(
            f'<tr><td class="md-name">{label}</td>{"".join(cells)}'
            f'<td class="md-num">{_num(entry.get("time_s"), 0)}<br><small>{n} seed(s)</small></td></tr>'
        )
    note = (
        '<p class="md-note">Mean over seeds, [95% t-interval] below it; ★ and green: the best mean of each column '
        "(↑ higher is better, ↓ lower). Overlapping intervals are not a test: the paired differences below are.</p>"
    )
    return (
        note
        + f'<table class="md-cmp"><tr><th style="width:190px">variant</th>{head}<th>time per seed (s)</th></tr>'
        + "".join(rows)
        + "</table>"
    )


def differences_html(result: ComparisonResult) -> str:
    """Each variant minus the baseline, paired by seed; green / red where the interval excludes zero."""
    others = {n: v for n, v in result.variants.items() if "vs_baseline" in v}
    if not others:
        return ""
    head = "".join(f"<th>{METRIC_NAMES[k]}</th>" for k in METRIC_NAMES)
    rows = []
    for name, entry in others.items():
        cells = []
        for k in METRIC_NAMES:
            stat = entry["vs_baseline"].get(k, {})
            if stat.get("mean") is None:
                cells.append('<td class="md-num">n/a</td>')
                continue
            cls = "md-num"
            if excludes_zero(stat):
                cls += " md-better" if (stat["mean"] > 0) == HIGHER_IS_BETTER[k] else " md-worse"
            ci = (
                f"<br><small>[{stat['low']:+.3f}, {stat['high']:+.3f}]</small>"
                if stat.get("low") is not None
                else ""
            )
            cells.append(f'<td class="{cls}">{stat["mean"]:+.3f}{ci}</td>')
        rows.append(f'<tr><td class="md-name"><b>{html.escape(name)}</b></td>{"".join(cells)}</tr>')
    note = (
        f'<p class="md-note">Difference from <b>{html.escape(str(result.baseline))}</b>, seed by seed (same init, data '
        "order and samples), mean and [95% t-interval]. Green: better, red: worse, where the interval excludes zero; "
        "white: no measurable difference.</p>"
    )
    return (
        note
        + f'<table class="md-cmp"><tr><th style="width:190px">variant</th>{head}</tr>'
        + "".join(rows)
        + "</table>"
    )


def colour_key(colours: Mapping[str, str], names: Sequence[str]) -> str:
    """The curves' colour per variant as text (the plot's own legend may be cut off below it)."""
    items = "".join(
        f'<span style="margin-right:14px;white-space:nowrap"><span style="display:inline-block;width:22px;'
        f'height:4px;vertical-align:middle;background:{colours.get(n, "#000")}"></span> {html.escape(n)}</span>'
        for n in names
    )
    return f'<p class="md-note" style="font-size:14px">{items}</p>'


def about_md(result: ComparisonResult) -> str:
    """How it was made: the exact command and the budget actually spent."""
    b = result.budget or {}
    limit = (
        ", ".join(f"{b[k]} {k}" for k in ("steps", "minutes", "epochs") if b.get(k) is not None)
        or "unknown budget"
    )
    lines = [f"**Command:** `{result.command or 'not recorded'}`"]
    if b:
        lines.append(
            f"**Budget:** {limit} per run, batch {b.get('batch_size')}, width {b.get('base_width')}, "
            f"{b.get('size')} px; {b.get('seeds')} seed(s) ({', '.join(map(str, result.seeds))}), "
            f"{b.get('runs')} runs in {b.get('wall_s', 0) / 60:.1f} min "
            f"({b.get('cpu_s', 0) / 60:.1f} CPU-min, {b.get('torch_threads')} torch threads)."
        )
    return "  \n".join(lines)


def curve_frame(result: ComparisonResult, quantity: str) -> pd.DataFrame:
    """(step, value, variant) rows: each variant's curve, the mean over its seeds at each point."""
    key = next((k for k, label in METRIC_NAMES.items() if label == quantity), None)
    rows = []
    for name, entry in result.variants.items():
        points: dict[float, list[float]] = {}
        for seed in entry.get("seeds", []):
            if key is None:  # training loss: bins of equal index line up across seeds
                curve = seed.get("curve", {})
                pairs = zip(range(len(curve.get("step", []))), curve.get("loss", []), strict=False)
                steps = curve.get("step", [])
                for i, value in pairs:
                    points.setdefault(steps[i], []).append(value)
            else:
                for ev in seed.get("evals", []):
                    value = ev.get("metrics", {}).get(key)
                    if value is not None and np.isfinite(value):
                        points.setdefault(float(ev["step"]), []).append(value)
        rows += [(step, float(np.mean(vals)), name) for step, vals in sorted(points.items())]
    frame = pd.DataFrame(rows, columns=["step", "value", "variant"])
    return frame.astype({"step": "float64", "value": "float64", "variant": "str"})


def curve_frame_empty() -> pd.DataFrame:
    return pd.DataFrame({"step": [], "value": [], "variant": []}).astype(
        {"step": "float64", "value": "float64", "variant": "str"}
    )


def seed_table(done: dict[tuple[int, str], float], variants: list[str], seeds: int) -> str:
    """Markdown: one row per seed, one column per variant; ✓ with the run's time once it finished."""
    head = "| seed | " + " | ".join(variants) + " |\n|---|" + "---|" * len(variants)
    rows = [
        f"| {k + 1} | "
        + " | ".join(f"✓ {done[k, n]:.0f} s" if (k, n) in done else "·" for n in variants)
        + " |"
        for k in range(seeds)
    ]
    return "\n".join([head, *rows])

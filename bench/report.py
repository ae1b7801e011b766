"""Rendering results: a plain-text table for the terminal and BENCHMARKS.md."""

from __future__ import annotations

from typing import Any

RUN_COMMAND = "python bench/run.py --write-benchmarks BENCHMARKS.md"
# BENCHMARKS.md holds its results table between these two lines; --write-benchmarks rewrites only that part.
RESULTS_START = "<!-- results:start -->"
RESULTS_END = "<!-- results:end -->"

METHOD = """\
- **1 Training throughput.** The shipped loop is `train()` itself with the shipped recipe (AdamW
  lr 2e-3, one-cycle, channels_last, mask bce+dice, depth bce, batch 32, joint augmentation) on
  synthetic scenes at the seed's size (100x100x20x2, 64x64), evaluation and previews off. The
  reference (`bench/reference.py`) trains the same W-Net as the seed did: eager fp32, Adam lr 0.01,
  BCE + BCE, a shuffled DataLoader over the seed's 224x224 JPEGs read at 64x64, same batch. Their
  windows alternate in one process; one ratio per round. GFLOP/s = img/s x FLOPs counted by
  `FlopCounterMode`, against a 2048x2048 fp32 `torch.mm`.
- **1b Step breakdown.** One fixed batch of 32: the wall time of each phase of the shipped step
  and of candidate changes, each on its own copy of the same weights, interleaved per round; the
  data time is one batch with `num_workers=0`, alternating with the same fetch on one torch thread.
- **precision.** bf16 autocast against fp32 training steps of the Train tab's recipe,
  interleaved, and the choice `--precision auto`'s probe made.
- **2 Data pipeline.** samples/s through a DataLoader (batch 32, shuffled) with 0 workers (and one
  torch thread while fetching) and 1 worker, windows interleaved: the synthetic generator with its
  augmentation (cache warm) and the seed-layout folder dataset (JPEG 224 -> 64).
- **3 Inference.** One (bg, fg_bg) pair from PNG files: `Predictor.predict` + `save_prediction`
  (4 PNGs) at 224x224 and on a 1024x768 photo; the model alone is one full forward at the 224
  photo's working size, batch 1; the app rows call `/predict` through `gradio_client` on
  `build_demo(...)` in the same process, with and without downloading its outputs. All probes
  take turns in every iteration.
- **3b Prediction on big photos.** `bench.predict_speed`: a real photo with a cut-out pasted in,
  upscaled to 1024x768 and 4000x3000, each size in its own subprocess: `Predictor.predict` from
  the files, `save_prediction` (4 PNGs) and one full forward at the working size take turns; one
  ratio per repeat.
- **4 Cold start.** `python app.py` to the first successful `/predict` through `gradio_client`.
- **4b The Train tab's default run.** `bench.app_train`: `python app.py` driven through
  `/train` with every default (the stream read to its end, as a page does), then `python -m
  maskdepth train --config recipes/browser.toml` for the same minutes, both on one precision
  cache measured first; steps and held-out IoU from each run's metrics.json.
- **5 Quality per CPU-minute.** The shipped recipe and the seed's (Adam lr 0.01, ReduceLROnPlateau,
  batch 128, BCE + BCE, no channels_last, no augmentation) through the same `train()` for the
  same wall-clock budget, each in its own subprocess (peak RSS = its VmHWM), both scored on the
  first N samples of the test split `train()` holds out (seed 0).
"""


def num(x: float | None) -> str:
    """Compact number formatting for tables."""
    if x is None:
        return "-"
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    if a >= 0.1 or a == 0:
        return f"{x:.3f}"
    return f"{x:.4f}"


def _cells(row: dict[str, Any]) -> list[str]:
    rng = f"{num(row['lo'])}-{num(row['hi'])}" if row.get("lo") is not None else ""
    return [
        row["section"],
        row["metric"],
        num(row["value"]),
        rng,
        str(row["n"]) if row.get("n") else "",
        row.get("unit", ""),
        row.get("target", ""),
        row.get("verdict", ""),
        row.get("note", ""),
    ]


HEADERS = ["section", "metric", "median", "min-max", "n", "unit", "target", "verdict", "note"]


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    """A fixed-width table."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (pipes in cells escaped)."""

    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def status_line(results: dict[str, Any]) -> str:
    meta = results["meta"]
    if meta.get("quick"):
        return (
            "**SMOKE TEST (`--quick`)**: tiny budgets, possibly on a busy machine. These numbers only show "
            "that the benchmark runs end to end; they are **not results** and must not be quoted."
        )
    only = meta.get("settings", {}).get("only")
    what = f"Run of {', '.join(only)}" if only else "Full run"
    return f"{what}, {meta['machine']['date']} (took {meta.get('duration_s', 0) / 60:.0f} min)."


def render_text(results: dict[str, Any]) -> str:
    """The terminal report: machine facts, the main table, extra tables, notes."""
    meta = results["meta"]
    m = meta["machine"]
    parts = [
        ("SMOKE TEST (--quick): not results" if meta.get("quick") else "maskdepth benchmark"),
        f"command : {meta['command']}",
        f"machine : {m['cpu']}, {m['cores']} cores ({m['cores_usable']} usable), {m.get('mem_gb')} GB, flags {' '.join(m.get('cpu_flags', []))}",
        f"software: python {m['python']}, torch {m['torch']} ({m['torch_threads']} threads), {m['platform']}",
        f"date    : {m['date']}, load average at start {m.get('loadavg_at_start')}",
        "",
        text_table(HEADERS, [_cells(r) for r in results["rows"]]),
    ]
    for t in results.get("tables", []):
        parts += ["", t["title"], text_table(t["headers"], t["rows"])]
    if results.get("notes"):
        parts += ["", "notes:"] + [f"- {n}" for n in results["notes"]]
    return "\n".join(parts)


def render_results(results: dict[str, Any]) -> list[str]:
    """The results section's Markdown lines: the run, its CPU and torch, the main table, tables, notes."""
    meta, m = results["meta"], results["meta"]["machine"]
    out = [
        status_line(results),
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores ({m['cores_usable']} usable), {m.get('mem_gb')} GB RAM; flags: {', '.join(m.get('cpu_flags', []))}",
        f"- Software: torch {m['torch']} with {m['torch_threads']} threads, Python {m['python']}; {m['platform']}",
        f"- Date: {m['date']}; load average at start: {m.get('loadavg_at_start')}",
        f"- Command: `{meta['command']}`",
        "",
        md_table(HEADERS, [_cells(r) for r in results["rows"]]),
        "",
    ]
    for t in results.get("tables", []):
        out += [f"### {t['title']}", "", md_table(t["headers"], t["rows"]), ""]
    if results.get("notes"):
        out += ["Notes:", ""] + [f"- {n}" for n in results["notes"]] + [""]
    return out


def results_span(page: str) -> tuple[int, int]:
    """Where the text between ``page``'s results markers starts and ends; ValueError without them."""
    start, end = page.find(RESULTS_START), page.find(RESULTS_END)
    if start < 0 or end < start:
        raise ValueError(f"no {RESULTS_START} ... {RESULTS_END} lines around a results section to rewrite")
    return start + len(RESULTS_START), end


def replace_results(page: str, results: dict[str, Any]) -> str:
    """``page`` (BENCHMARKS.md) with only the text between its results markers replaced by ``results``
    and the method that measured them."""
    start, end = results_span(page)
    section = "\n".join([*render_results(results), "", "### Method of `bench/run.py`", "", METHOD]).strip()
    return f"{page[:start]}\n\n{section}\n\n{page[end:]}"


def render_markdown(results: dict[str, Any] | None) -> str:
    """BENCHMARKS.md: pending (``results`` None), smoke or full."""
    out = ["# Benchmarks", ""]
    if results is None:
        out += [
            "**Numbers pending.** The full benchmark has not been run yet (the machine was busy with a",
            "training run when the benchmark was written). Nothing below is a measurement.",
            "",
        ]
    else:
        out += [status_line(results), ""]
    out += [
        "## How to run",
        "",
        "```bash",
        f".venv/bin/{RUN_COMMAND}      # full: ~1 h, needs a quiet machine",
        ".venv/bin/python bench/run.py --quick            # smoke test: a few minutes",
        ".venv/bin/python bench/run.py --only inference cold   # one or more sections",
        ".venv/bin/python bench/run.py --from-json bench/results.json --write-benchmarks BENCHMARKS.md  # re-render",
        "```",
        "",
        "It prints a table and writes `bench/results.json` (every window, every run). Targets are",
        "checked on medians: training throughput >= 1.6x the seed-style reference; end-to-end 224",
        "predict <= 2x the model alone; app overhead through gradio_client <= 100 ms; cold start",
        "<= 10 s; at 15 minutes the shipped recipe beats the seed's on every metric and reaches",
        "mask IoU >= 0.95 and depth δ<1.25 >= 0.90.",
        "",
    ]
    if results is not None:
        out += ["## Results", "", *render_results(results)]
    out += ["## Method", "", METHOD]
    return "\n".join(out).rstrip() + "\n"

"""Rendering results: a plain-text table for the terminal and BENCHMARKS.md."""

from __future__ import annotations

from typing import Any

RUN_COMMAND = "python bench/run.py --write-benchmarks BENCHMARKS.md"
# BENCHMARKS.md holds its results table between these two lines; --write-benchmarks rewrites only that part.
RESULTS_START = "<!-- results:start -->"
RESULTS_END = "<!-- results:end -->"

METHOD = """\
- **1 Training throughput.** The shipped loop is `maskdepth.training.loop.train` itself with the shipped
  recipe (AdamW lr 2e-3, one-cycle, channels_last, mask bce+dice, depth bce, batch 32, joint
  augmentation, synthetic scenes at the seed's size 100x100x20x2, 64x64), evaluation and previews
  switched off (`eval_every` huge, `sample_every=0`). The reference (`bench/reference.py`) is the
  same W-Net trained as the seed did: eager fp32, default memory format, Adam lr 0.01, BCE + BCE,
  a plain loop over a shuffled DataLoader on a `SeedLayoutDataset` that decodes 224x224 JPEGs
  (exported with `export_seed_layout`) at 64x64; same batch size (32) so the ratio measures the
  loop, not the batch. Windows of each alternate in one process (S R, R S, ...), the reference
  running inside the shipped loop's event callback; one ratio per round; median (min-max).
  GFLOP/s = img/s x FLOPs counted by `FlopCounterMode` (convolutions/matmuls, forward+backward),
  against a 2048x2048 fp32 `torch.mm` measured before and after.
- **1b Step breakdown.** One fixed batch of 32; per-phase wall time (CPU ops are synchronous) of
  the shipped step and of candidate changes (NCHW, AdamW foreach/fused, bf16 autocast), each on its
  own copy of the same initial weights, interleaved per round. Data time = one batch from the
  shipped data pipeline with `num_workers=0`, alternating with the same fetch under
  `torch.set_num_threads(1)` (a candidate fix: tiny augmentation ops stop fanning out over
  torch's thread pool).
- **2 Data pipeline.** samples/s through a DataLoader (batch 32, shuffled) with 0 workers (torch's
  default threads, and one thread while fetching) and 1 worker, windows interleaved (batches a
  worker prefetched while another configuration was timed are taken untimed first); the synthetic
  generator with `JointAugment` (background cache warm, as in a long run) and the folder dataset
  (seed layout, JPEG 224 -> 64). "Data time / step time" divides the workers=0 batch time by the
  shipped loop's step time from section 1.
- **3 Inference.** One (bg, fg_bg) pair from PNG files: `Predictor.predict` + `save_prediction`
  (4 PNGs), at 224x224 and on a 1024x768 photo; the model alone is one full forward (both
  branches) at the working size of the 224x224 photo, batch 1. The app row calls `/predict` through `gradio_client` against
  `build_demo(...)` launched in the same process (or `python app.py` if that is not possible);
  overhead = app - end to end, per iteration. All probes take turns in every iteration.
- **3b Prediction on big photos.** `bench.predict_speed`: a JPEG pair (a real photo with a
  cut-out pasted in, upscaled) at 1024x768 and 4000x3000, each size in its own subprocess (its
  own peak RSS): `Predictor.predict` from the files, `save_prediction` (4 PNGs) and one full
  forward at the working size take turns; the ratio is per repeat.
- **4 Cold start.** `python app.py` with `GRADIO_SERVER_PORT` set, to the first successful
  `/predict` through `gradio_client`.
- **4b The Train tab's default run.** `bench.app_train`: `python app.py` driven through
  `gradio_client` `/train` with every default (the stream consumed to its end, as a page does),
  then `python -m maskdepth train --config recipes/browser.toml` for the same minutes; both read
  one precision cache measured first. Steps and held-out IoU from each run's metrics.json.
- **5 Quality per CPU-minute.** The shipped recipe and the seed's (Adam lr 0.01 without weight
  decay, ReduceLROnPlateau, batch 128, BCE + BCE, no channels_last, no augmentation) through the
  same `train()` for the same wall-clock budget on the seed-sized synthetic data, each in its own
  subprocess (peak RSS = its VmHWM); both scored with `maskdepth.training.evaluate` on the first N samples
  of the test split that `train()` holds out (seed 0).
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
    """``page`` (BENCHMARKS.md) with only the text between its results markers replaced by ``results``."""
    start, end = results_span(page)
    section = "\n".join(render_results(results)).strip()
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

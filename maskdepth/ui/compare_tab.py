"""Compare tab: the loss-variant comparison (gallery, metrics table, verdict) and running a new one.

The shipped comparison lives in ``comparisons/default/`` (written by ``python -m maskdepth compare``);
comparisons run from this tab go to ``<runs>/compare-<time>/`` and can be picked afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from PIL import Image

from maskdepth.compare import VARIANTS, ComparisonResult, load_comparison, run_comparison
from maskdepth.errors import InputError
from maskdepth.metrics import METRIC_NAMES
from maskdepth.train import StepEvent, TrainConfig
from maskdepth.ui.context import AppContext
from maskdepth.ui.errors import gradio_errors
from maskdepth.ui.jobs import TRAIN_CONCURRENCY, TRAINING, ThreadJob, cli_command, session_of
from maskdepth.ui.live import RENDER_EVERY_S, LiveRun, loss_plot

SHIPPED = "shipped comparison"
TABLE_COLUMNS = ["variant", "description", *METRIC_NAMES.values(), "time (s)"]
DEFAULT_VARIANTS = ["bce|bce", "bce|ssim"]


# ---- showing a comparison ---------------------------------------------------------------------------


def comparison_choices(ctx: AppContext) -> list[str]:
    """The shipped comparison first, then comparisons run from the app (newest first)."""
    found = []
    if ctx.runs_dir.is_dir():
        found = sorted(
            # Links are skipped (as list_runs does): a comparison is shown only from inside the runs folder.
            (p for p in ctx.runs_dir.iterdir() if not p.is_symlink() and (p / "results.json").is_file()),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
    return [SHIPPED, *(p.name for p in found)]


def comparison_folder(ctx: AppContext, choice: str | None) -> Path:
    """The folder behind a picker value; only the shipped one or a comparison in the runs folder."""
    if not choice or choice == SHIPPED:
        return ctx.comparison_dir
    if choice not in comparison_choices(ctx):
        raise InputError(f"no comparison named {choice!r}: pick one from the list")
    return ctx.runs_dir / choice


def results_table(result: ComparisonResult) -> pd.DataFrame:
    """One row per variant: its description, each metric (4 decimals) and its training time."""
    rows = []
    for name, v in result.variants.items():
        metrics = v.get("metrics", {})
        row = {"variant": name, "description": v.get("description", "")}
        for key, label in METRIC_NAMES.items():
            value = metrics.get(key)
            row[label] = round(float(value), 4) if value is not None else None
        row["time (s)"] = v.get("time_s")
        rows.append(row)
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def load_view(folder: Path) -> tuple[list[tuple[Image.Image, str]], pd.DataFrame, str, int]:
    """(gallery items, metrics table, verdict markdown, gallery columns) for a comparison folder.

    A missing comparison is not an error: the tab explains how to make one.
    """
    result = load_comparison(folder)
    if result is None:
        message = (
            f"No comparison in `{folder}` yet. Run one below, or from the command line:\n\n"
            f"`python -m maskdepth compare --minutes 5 --out {folder}`"
        )
        return [], pd.DataFrame(columns=TABLE_COLUMNS), message, 3
    items = []
    for entry in result.gallery:
        path = (folder / entry.get("path", "")).resolve()
        if not path.is_relative_to(folder.resolve()) or not path.is_file():
            continue  # a results.json pointing outside its folder is ignored, not followed
        with Image.open(path) as img:
            # Read the pixels here (not a path): Gradio then serves a copy, not files from the runs folder.
            items.append((img.convert("RGB"), entry.get("caption", path.stem)))
    columns = 3 + 2 * max(
        len(result.variants), 1
    )  # input, targets, then mask + depth per variant: one row per sample
    verdict = f"**Verdict.** {result.verdict}" if result.verdict else ""
    # Gallery captions get cut in narrow cells, so the column order is spelled out once here.
    order = " | ".join(f"{name} mask, {name} depth" for name in result.variants)
    verdict += f"\n\n**Gallery**, one row per test sample: input | target mask | target depth | {order}."
    return items, results_table(result), verdict, columns


def show(ctx: AppContext, choice: str | None) -> tuple[Any, ...]:
    items, table, verdict, columns = load_view(comparison_folder(ctx, choice))
    return gr.update(value=items, columns=columns), table, verdict


# ---- running a new comparison --------------------------------------------------------------------------


def base_config(
    minutes: float, backgrounds: int, foregrounds: int, positions: int, size: int, base_width: int
) -> TrainConfig:
    """The shared config every variant starts from (same data, seed and budget)."""
    if not minutes or minutes <= 0:
        raise InputError("minutes per variant must be > 0")
    return TrainConfig(
        minutes=float(minutes),
        backgrounds=int(backgrounds),
        foregrounds=int(foregrounds),
        positions=int(positions),
        size=int(size),
        base_width=int(base_width),
        eval_samples=256,
        sample_every=0,
    )


def compare_stream(
    ctx: AppContext, owner: str, base: TrainConfig, variants: list[str]
) -> Iterator[tuple[Any, ...]]:
    """Yield (progress, status, loss frame, gallery, table, verdict, picker) while variants train in turn."""
    if not variants:
        raise InputError("pick at least one variant to compare")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise InputError(f"unknown variant(s) {', '.join(unknown)}; choose from: {', '.join(VARIANTS)}")
    stop = TRAINING.acquire("comparison", owner)
    folder = ctx.runs_dir / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
    command = cli_command(base, subcommand="compare", out=str(folder), extra=["--variants", *variants])
    skip = gr.skip()
    state = {"index": -1, "name": ""}
    view = LiveRun("comparison")

    def target(emit: Any) -> ComparisonResult:
        return run_comparison(
            base, variants, folder, on_event=lambda name, ev: emit((name, ev)), stop=stop, command=command
        )

    try:
        job = ThreadJob(target, stop=stop, on_exit=lambda: TRAINING.release(stop), name="maskdepth-compare")
    except BaseException:
        TRAINING.release(stop)
        raise
    last = 0.0
    for item in job.events():
        if item is not None:
            name, event = item
            if name != state["name"]:
                state.update(index=variants.index(name), name=name)
                view = LiveRun(f"variant {name}")
            view.update(event)
            TRAINING.set_progress(stop, (state["index"] + view.progress) / len(variants))
            if isinstance(event, StepEvent) and time.monotonic() - last < RENDER_EVERY_S:
                continue  # step events render at most every RENDER_EVERY_S
        last = time.monotonic()
        index = max(state["index"], 0)
        overall = (index + view.progress) / len(variants)
        yield (
            view.progress_html(f"{index + 1}/{len(variants)} · ", overall),
            view.status_md(),
            view.loss_frame(),
            skip,
            skip,
            skip,
            skip,
        )
    job.join()
    if job.error is not None:
        raise job.error
    gallery, table, verdict = show(ctx, folder.name)
    gr.Info("comparison finished: its runs are now in the model pickers")
    picker = gr.update(choices=comparison_choices(ctx), value=folder.name)
    yield (
        view.progress_html(f"{len(variants)}/{len(variants)} · ", 1.0),
        f"written to `{folder}`",
        view.loss_frame(),
        gallery,
        table,
        verdict,
        picker,
    )


# ---- layout ----------------------------------------------------------------------------------------------


@dataclass
class CompareTab:
    picker: gr.Dropdown
    gallery: gr.Gallery
    table: gr.Dataframe
    verdict: gr.Markdown


def build(ctx: AppContext) -> CompareTab:
    """Lay out the tab and wire its events (call inside a ``gr.Tab``)."""
    gr.Markdown(
        "Loss variants trained on the same data, seed and budget, then scored on the same held-out samples. "
        "The gallery shows the same test samples for each variant: input, target mask, target depth, then "
        "each variant's mask and depth (turbo colours: red = near, blue = far)."
    )
    with gr.Row():
        picker = gr.Dropdown(comparison_choices(ctx), value=SHIPPED, label="Comparison", scale=5)
        refresh = gr.Button("↻ Refresh list", scale=1, size="sm")
    items, table_value, verdict_value, columns = load_view(ctx.comparison_dir)
    verdict = gr.Markdown(verdict_value, label="Verdict")
    table = gr.Dataframe(
        table_value, label="Metrics per variant (held-out samples)", interactive=False, wrap=True
    )
    gallery = gr.Gallery(
        items, label="Gallery", columns=columns, height="auto", format="png", interactive=False
    )

    with gr.Accordion("Run a new comparison", open=False):
        variants = gr.CheckboxGroup(
            [(f"{k}: {v.description}", k) for k, v in VARIANTS.items()],
            value=DEFAULT_VARIANTS,
            label="Variants",
        )
        with gr.Row():
            minutes = gr.Slider(0.25, 30, value=1, step=0.25, label="Minutes per variant")
            base_width = gr.Dropdown([4, 8, 16, 32], value=32, label="Width (32 = the seed's W-Net)")
            size = gr.Slider(32, 224, value=64, step=32, label="Resolution")
        with gr.Row():
            backgrounds = gr.Slider(1, 100, value=10, step=1, label="backgrounds")
            foregrounds = gr.Slider(1, 100, value=10, step=1, label="foregrounds")
            positions = gr.Slider(1, 20, value=5, step=1, label="positions")
        with gr.Row():
            start = gr.Button("Run comparison", variant="primary")
            stop = gr.Button("Stop", variant="stop")
        progress = gr.HTML(label="Progress")
        status = gr.Markdown(label="Status")
        losses = loss_plot("Loss curves of the variant in training", height=300)

    @gradio_errors
    def on_show(choice: str | None) -> tuple[Any, ...]:
        return show(ctx, choice)

    @gradio_errors
    def on_run(
        variants: list[str],
        minutes: float,
        base_width: int,
        size: int,
        backgrounds: int,
        foregrounds: int,
        positions: int,
        request: gr.Request,
    ) -> Iterator[tuple[Any, ...]]:
        base = base_config(minutes, backgrounds, foregrounds, positions, size, base_width)
        yield from compare_stream(ctx, session_of(request), base, list(variants or []))

    @gradio_errors
    def on_stop(request: gr.Request) -> None:
        gr.Info(TRAINING.request_stop(session_of(request)))

    def on_refresh() -> Any:
        return gr.update(choices=comparison_choices(ctx))

    picker.change(on_show, picker, [gallery, table, verdict], api_name="show_comparison")
    refresh.click(on_refresh, None, picker, api_visibility="private", queue=False)
    event = start.click(
        on_run,
        [variants, minutes, base_width, size, backgrounds, foregrounds, positions],
        [progress, status, losses, gallery, table, verdict, picker],
        api_name="compare",
        concurrency_id="train",
        concurrency_limit=TRAIN_CONCURRENCY,
        show_progress="hidden",
    )
    ctx.model_events.append(event)
    stop.click(on_stop, None, None, api_visibility="private", concurrency_id="stop", concurrency_limit=None)
    return CompareTab(picker=picker, gallery=gallery, table=table, verdict=verdict)

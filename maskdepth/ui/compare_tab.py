"""Compare tab: the loss-variant comparison (verdict, gallery, A/B, tables, curves) and running a new one.

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

from maskdepth.compare.comparison import (
    DEFAULT_SEEDS,
    VARIANTS,
    ComparisonResult,
    load_comparison,
    run_comparison,
    shipped_command,
)
from maskdepth.errors import InputError
from maskdepth.model.metrics import METRIC_NAMES
from maskdepth.training.loop import StepEvent, TrainConfig
from maskdepth.ui.compare_html import (
    CSS,
    about_md,
    colour_key,
    curve_frame,
    curve_frame_empty,
    differences_html,
    gallery_html,
    metrics_html,
    seed_table,
)
from maskdepth.ui.context import AppContext
from maskdepth.ui.errors import gradio_errors
from maskdepth.ui.jobs import TRAIN_CONCURRENCY, TRAINING, ThreadJob, cli_command
from maskdepth.ui.live import RENDER_EVERY_S, LiveRun, loss_plot

SHIPPED = "shipped comparison"
DEFAULT_VARIANTS = ["bce|bce", "bce|ssim"]
TRAINING_LOSS = "training loss (each variant's own loss)"
CURVES = [*METRIC_NAMES.values(), TRAINING_LOSS]
DEFAULT_CURVE = METRIC_NAMES["mask_iou"]
PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#db2777"]
VARIANT_COLORS = {
    name: PALETTE[i % len(PALETTE)] for i, name in enumerate(VARIANTS)
}  # one colour per variant


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


@dataclass
class View:
    """Everything the tab shows for one comparison."""

    about: str
    verdict: str
    gallery: str
    variants: list[str]
    metrics: str
    differences: str
    result: ComparisonResult | None


def load_view(folder: Path) -> View:
    """The tab's content for a comparison folder; a missing comparison says how to make one."""
    result = load_comparison(folder)
    if result is None:
        message = (
            f"No comparison in `{folder}` yet. Run one below, or from the command line:\n\n"
            f"`{shipped_command(folder)}`"
        )
        return View("", message, "", [], "", "", None)
    verdict = f"### Verdict\n{result.verdict}" if result.verdict else ""
    return View(
        about_md(result),
        verdict,
        gallery_html(result),
        list(result.variants),
        metrics_html(result),
        differences_html(result),
        result,
    )


def ab_html(ctx: AppContext, choice: str | None, a: str | None, b: str | None) -> str:
    """The gallery with only variants A and B, one above the other."""
    result = load_comparison(comparison_folder(ctx, choice))
    if result is None or not a or not b:
        return ""
    return gallery_html(result, [a, b])


def show(ctx: AppContext, choice: str | None, quantity: str = DEFAULT_CURVE) -> tuple[Any, ...]:
    """Outputs of the picker: about, verdict, gallery, A, B, A/B view, metrics, differences, curves, key."""
    view = load_view(comparison_folder(ctx, choice))
    a = view.variants[0] if view.variants else None
    b = view.variants[1] if len(view.variants) > 1 else a
    ab = gallery_html(view.result, [a, b]) if view.result and a else ""
    curves = curve_frame(view.result, quantity) if view.result else curve_frame_empty()
    return (
        view.about,
        view.verdict,
        view.gallery,
        gr.update(choices=view.variants, value=a),
        gr.update(choices=view.variants, value=b),
        ab,
        view.metrics,
        view.differences,
        gr.update(value=curves, y_title=quantity),
        colour_key(VARIANT_COLORS, view.variants),
    )


# ---- running a new comparison --------------------------------------------------------------------------


def base_config(
    minutes: float, backgrounds: int, foregrounds: int, positions: int, size: int, base_width: int
) -> TrainConfig:
    """The shared config every variant starts from (same data, seeds and budget)."""
    if not minutes or minutes <= 0:
        raise InputError("minutes per run must be > 0")
    return TrainConfig(
        minutes=float(minutes),
        backgrounds=int(backgrounds),
        foregrounds=int(foregrounds),
        positions=int(positions),
        size=int(size),
        base_width=int(base_width),
        eval_samples=128,
        sample_every=0,
        # The shipped comparison's data (comparisons/default): room scenes, one image + its paste.
        scene_families="rooms",
        two_shot=False,
    )


def compare_stream(
    ctx: AppContext, owner: str, base: TrainConfig, variants: list[str], seeds: int = DEFAULT_SEEDS
) -> Iterator[tuple[Any, ...]]:
    """Yield (progress, status, loss frame, *the picker's outputs, picker) while the runs train in turn."""
    if not variants:
        raise InputError("pick at least one variant to compare")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise InputError(f"unknown variant(s) {', '.join(unknown)}; choose from: {', '.join(VARIANTS)}")
    seeds = int(seeds)
    if seeds < 1:
        raise InputError("seeds must be >= 1")
    stop = TRAINING.acquire("comparison", owner)
    folder = ctx.runs_dir / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
    extra = ["--variants", *variants, "--seeds", str(seeds)]
    command = cli_command(base, subcommand="compare", out=str(folder), extra=extra)
    skip = gr.skip()
    state: dict[str, Any] = {"key": None, "started": 0.0}
    done: dict[tuple[int, str], float] = {}
    view = LiveRun("comparison")

    def target(emit: Any) -> ComparisonResult:
        return run_comparison(
            base,
            variants,
            folder,
            on_event=lambda key, ev: emit((key, ev)),
            stop=stop,
            command=command,
            seeds=seeds,
        )

    try:
        job = ThreadJob(target, stop=stop, on_exit=lambda: TRAINING.release(stop), name="maskdepth-compare")
    except BaseException:
        TRAINING.release(stop)
        raise
    total = seeds * len(variants)
    last = 0.0
    for item in job.events():
        if item is not None:
            key, event = item
            if key != state["key"]:  # the previous run finished (keys are unique per run)
                previous = state["key"]
                if previous is not None:
                    done[previous.seed_index, previous.variant] = time.monotonic() - state["started"]
                state.update(key=key, started=time.monotonic())
                view = LiveRun(f"seed {key.seed_index + 1}/{seeds} · {key.variant}")
            view.update(event)
            TRAINING.set_progress(stop, (key.index + view.progress) / total)
            if isinstance(event, StepEvent) and time.monotonic() - last < RENDER_EVERY_S:
                continue  # step events render at most every RENDER_EVERY_S
        last = time.monotonic()
        key = state["key"]
        index = key.index if key is not None else 0
        overall = (index + view.progress) / total
        status = f"{view.status_md()}\n\n{seed_table(done, variants, seeds)}"
        yield (
            view.progress_html(f"run {index + 1}/{total} · ", overall),
            status,
            view.loss_frame(),
            *[skip] * 10,
            skip,
        )
    job.join()
    if job.error is not None:
        raise job.error
    gr.Info("comparison finished: its runs are now in the model pickers")
    picker = gr.update(choices=comparison_choices(ctx), value=folder.name)
    final = load_comparison(folder)
    for name, entry in (final.variants if final else {}).items():
        for k, seed in enumerate(entry.get("seeds", [])):
            done[k, name] = seed.get("time_s", 0.0)
    status = f"written to `{folder}`\n\n{seed_table(done, variants, seeds)}"
    yield (
        view.progress_html(f"run {total}/{total} · ", 1.0),
        status,
        view.loss_frame(),
        *show(ctx, folder.name),
        picker,
    )


# ---- layout ----------------------------------------------------------------------------------------------


@dataclass
class CompareTab:
    picker: gr.Dropdown
    gallery: gr.HTML
    table: gr.HTML
    verdict: gr.Markdown


def build(ctx: AppContext) -> CompareTab:
    """Lay out the tab and wire its events (call inside a ``gr.Tab``)."""
    gr.Markdown(
        "Loss variants trained with the same seeds, data and budget, then scored on the same held-out samples. "
        "Each difference is paired seed by seed and shown with its 95% interval; the verdict names only "
        "differences whose interval excludes zero."
    )
    with gr.Row():
        picker = gr.Dropdown(comparison_choices(ctx), value=SHIPPED, label="Comparison", scale=5)
        refresh = gr.Button("↻ Refresh list", scale=1, size="sm")
    first = show(ctx, SHIPPED)
    about = gr.Markdown(first[0])
    verdict = gr.Markdown(first[1], label="Verdict")
    gr.Markdown("### Gallery")
    gallery = gr.HTML(first[2], css_template=CSS)
    gr.Markdown("### A/B: two variants of your choice, row above row, under the same inputs and targets")
    with gr.Row():
        a = gr.Dropdown(label="Variant A", **_choices(first[3]))
        b = gr.Dropdown(label="Variant B", **_choices(first[4]))
    ab = gr.HTML(first[5], css_template=CSS)
    gr.Markdown("### Metrics per variant (held-out samples)")
    table = gr.HTML(first[6], css_template=CSS)
    differences = gr.HTML(first[7], css_template=CSS)
    gr.Markdown("### Training curves (held-out evaluations during training; mean over seeds)")
    quantity = gr.Radio(CURVES, value=DEFAULT_CURVE, label="Curve")
    key = gr.HTML(first[9], css_template=CSS)
    curves = gr.LinePlot(
        first[8]["value"],
        x="step",
        y="value",
        color="variant",
        color_map=VARIANT_COLORS,
        y_title=DEFAULT_CURVE,
        height=460,
        label="Curves",
    )
    outputs = [about, verdict, gallery, a, b, ab, table, differences, curves, key]

    @gradio_errors
    def on_show(choice: str | None, quantity: str) -> tuple[Any, ...]:
        return show(ctx, choice, quantity)

    @gradio_errors
    def on_ab(choice: str | None, a: str | None, b: str | None) -> str:
        return ab_html(ctx, choice, a, b)

    @gradio_errors
    def on_curve(choice: str | None, quantity: str) -> Any:
        result = load_comparison(comparison_folder(ctx, choice))
        frame = curve_frame(result, quantity) if result else curve_frame_empty()
        return gr.update(value=frame, y_title=quantity)

    def on_refresh() -> Any:
        return gr.update(choices=comparison_choices(ctx))

    picker.change(
        on_show,
        [picker, quantity],
        outputs,
        api_name="show_comparison",
        api_description="Show a saved loss-variant comparison: its verdict, metrics with 95% intervals, "
        "differences against the seed's baseline, curves and gallery.",
    )
    for control in (a, b):
        control.change(on_ab, [picker, a, b], ab, api_visibility="private")
    quantity.change(on_curve, [picker, quantity], curves, api_visibility="private")
    refresh.click(on_refresh, None, picker, api_visibility="private", queue=False)
    _build_runner(ctx, [*outputs, picker])
    return CompareTab(picker=picker, gallery=gallery, table=table, verdict=verdict)


def _build_runner(ctx: AppContext, outputs: list[Any]) -> None:  # outputs: the views, then the picker
    """The "Run a new comparison" section: variants, seeds, budget; per-seed progress while it runs."""
    with gr.Accordion("Run a new comparison", open=False):
        variants = gr.CheckboxGroup(
            [(f"{k}: {v.description}", k) for k, v in VARIANTS.items()],
            value=DEFAULT_VARIANTS,
            label="Variants",
        )
        with gr.Row():
            seeds = gr.Slider(1, 5, value=DEFAULT_SEEDS, step=1, label="Seeds per variant (3+ for intervals)")
            minutes = gr.Slider(0.25, 30, value=1, step=0.25, label="Minutes per run")
            base_width = gr.Dropdown([4, 8, 16, 32], value=16, label="Width (32 = the seed's W-Net)")
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
        losses = loss_plot("Loss curves of the run in training", height=300)

    @gradio_errors
    def on_run(
        variants, seeds, minutes, base_width, size, backgrounds, foregrounds, positions, request: gr.Request
    ):
        base = base_config(minutes, backgrounds, foregrounds, positions, size, base_width)
        yield from compare_stream(ctx, ctx.visitor(request), base, list(variants or []), int(seeds))

    @gradio_errors
    def on_stop(request: gr.Request) -> None:
        gr.Info(TRAINING.request_stop(ctx.visitor(request)))

    event = start.click(
        on_run,
        [variants, seeds, minutes, base_width, size, backgrounds, foregrounds, positions],
        [progress, status, losses, *outputs],
        api_name="compare",
        api_description="Train the chosen loss variants with several seeds on the same data and budget, "
        "then score them on held-out samples (streams per-seed progress).",
        concurrency_id="train",
        concurrency_limit=TRAIN_CONCURRENCY,
        show_progress="hidden",
    )
    ctx.model_events.append(event)
    stop.click(on_stop, None, None, api_visibility="private", concurrency_id="stop", concurrency_limit=None)


def _choices(update: dict) -> dict:
    """Dropdown constructor arguments from a ``gr.update(choices=..., value=...)``."""
    return {"choices": update.get("choices", []), "value": update.get("value")}

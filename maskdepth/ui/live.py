"""The live view of a training run, shared by the Train and Compare tabs.

:class:`LiveRun` folds the training loop's events (``maskdepth.training.loop``) into what a tab shows:
a progress bar, a status line, loss and learning-rate curves, and a grid of sample predictions.
The Train tab's curves are one Vega-Lite chart (:func:`curves_plot`): a legend naming every line,
a log y-axis when the losses span a decade or more, the learning rate on its own right-hand axis.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
from gradio.components.plot import AltairPlotData, PlotData
from PIL import Image

from maskdepth.imageio import grey_tile, rgb_tile
from maskdepth.predict.outputs import colorize_depth
from maskdepth.training.loop import DoneEvent, EvalEvent, SamplesEvent, StepEvent

RENDER_EVERY_S = 0.5  # at most two UI refreshes a second from step events
MAX_PLOT_POINTS = 300  # per series; longer curves are averaged into bins
SAMPLE_TILE = 96  # pixels per tile in the sample-predictions grid
LOSS_COLORS = {
    "train mask": "#2563eb",
    "train depth": "#16a34a",
    "test mask": "#f97316",
    "test depth": "#dc2626",
}
LR_SERIES, LR_COLOR = "learning rate (right axis)", "#6b7280"
LOG_SPAN = 10.0  # losses spanning at least this factor get a log y-axis
CURVE_POINTS = 200  # per series in the Train tab's chart


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return (
        f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


def binned(points: list[tuple[float, float]], limit: int = MAX_PLOT_POINTS) -> list[tuple[float, float]]:
    """At most ``limit`` points: consecutive points averaged in equal bins (keeps the curve's shape)."""
    if len(points) <= limit:
        return points
    arr = np.asarray(points, np.float64)
    return [tuple(chunk.mean(axis=0)) for chunk in np.array_split(arr, limit)]


def samples_grid(samples: list[dict[str, np.ndarray]], tile: int = SAMPLE_TILE) -> np.ndarray:
    """One image, a row per sample: input | mask target | mask predicted | depth target | depth predicted.

    Tiles are scaled to ``tile`` pixels (nearest neighbour: training maps are small and
    blurring them would hide what the model really outputs); 2-pixel white gaps between tiles.
    """

    def scaled(a: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(a).resize((tile, tile), Image.NEAREST))

    gap = 2
    rows = []
    for s in samples:
        tiles = [
            rgb_tile(s["fg_bg"]),
            grey_tile(s["mask"]),
            grey_tile(s["mask_pred"]),
            colorize_depth(s["depth"]),
            colorize_depth(s["depth_pred"]),
        ]
        row = np.full((tile, len(tiles) * (tile + gap) - gap, 3), 255, np.uint8)
        for j, t in enumerate(tiles):
            row[:, j * (tile + gap) : j * (tile + gap) + tile] = scaled(t)
        rows.append(row)
    if not rows:
        return np.full((tile, tile, 3), 255, np.uint8)
    grid = np.full((len(rows) * (tile + gap) - gap, rows[0].shape[1], 3), 255, np.uint8)
    for i, row in enumerate(rows):
        grid[i * (tile + gap) : i * (tile + gap) + tile] = row
    return grid


def loss_frame(points: Iterable[tuple[float, float, str]] = ()) -> pd.DataFrame:
    """(step, loss, series) rows, numeric dtypes even when empty (the plot reads its axis types from them)."""
    frame = pd.DataFrame(list(points), columns=["step", "loss", "series"])
    return frame.astype({"step": "float64", "loss": "float64", "series": "str"})


def initial_loss_frame() -> pd.DataFrame:
    """The loss plot's first value: one point per series at (0, 0), which draws no line.

    Gradio 6's plot fixes its legend from the first data it renders; starting empty (or with
    only the train series) would leave the test series out of the legend for the whole run.
    """
    return loss_frame((0.0, 0.0, name) for name in LOSS_COLORS)


def loss_plot(label: str, height: int) -> gr.LinePlot:
    return gr.LinePlot(
        initial_loss_frame(),
        x="step",
        y="loss",
        color="series",
        color_map=LOSS_COLORS,
        label=label,
        height=height,
    )


def lr_frame(points: Iterable[tuple[float, float]] = ()) -> pd.DataFrame:
    return pd.DataFrame(list(points), columns=["step", "lr"]).astype("float64")


class LiveRun:
    """Accumulates a run's events into what the tab shows: a progress bar, a status line, curves, samples."""

    def __init__(self, title: str = "training") -> None:
        self.title = title
        self.train_points: dict[str, list[tuple[float, float]]] = {"train mask": [], "train depth": []}
        self.test_points: dict[str, list[tuple[float, float]]] = {"test mask": [], "test depth": []}
        self.lr_points: list[tuple[float, float]] = []
        self.step: StepEvent | None = None
        self.best: EvalEvent | None = None
        self.last_eval: EvalEvent | None = None
        self.samples: np.ndarray | None = None  # the samples grid, once the first SamplesEvent came
        self.done: DoneEvent | None = None
        self.message = "starting..."
        self.failure: str | None = None  # the user-facing message if the run's thread failed
        # Wall time spent in evaluations and previews: the gap before each EvalEvent / SamplesEvent
        # (the loop emits them right after that work), out of the time since the first event.
        self.first_t: float | None = None
        self.last_t: float | None = None
        self.overhead_s = 0.0

    @property
    def progress(self) -> float:
        if self.done is not None and self.done.reason == "budget":
            return 1.0
        return self.step.progress if self.step else 0.0

    def update(self, event: Any) -> None:
        now = time.perf_counter()
        if self.last_t is not None and isinstance(event, (EvalEvent, SamplesEvent)):
            self.overhead_s += now - self.last_t
        self.first_t = now if self.first_t is None else self.first_t
        self.last_t = now
        if isinstance(event, StepEvent):
            self.step = event
            self.train_points["train mask"].append((event.step, event.mask_loss))
            self.train_points["train depth"].append((event.step, event.depth_loss))
            self.lr_points.append((event.step, event.lr))
            self.message = "training"
        elif isinstance(event, EvalEvent):
            self.last_eval = event
            self.test_points["test mask"].append((event.step, event.test_mask_loss))
            self.test_points["test depth"].append((event.step, event.test_depth_loss))
            if event.is_best:
                self.best = event
        elif isinstance(event, SamplesEvent):
            self.samples = samples_grid(event.samples)
        elif isinstance(event, DoneEvent):
            self.done = event
            self.message = event.message

    @property
    def overhead_share(self) -> float | None:
        """The share of wall time spent evaluating and drawing previews so far (None before any)."""
        if self.first_t is None or self.last_t is None or self.last_t - self.first_t < 1.0:
            return None
        return self.overhead_s / (self.last_t - self.first_t)

    def progress_detail(self) -> str:
        """Step, epoch, elapsed, ETA, images/s and the evaluation + previews share of the time."""
        s = self.step
        if s is None:
            return ""
        total = f"/{s.total_steps}" if s.total_steps else ""
        eta = "done" if self.done else f"ETA {fmt_time(s.eta_s)}"
        parts = [f"step {s.step}{total}", f"epoch {s.epoch + 1}", f"{fmt_time(s.elapsed_s)} elapsed", eta]
        parts.append(f"{s.images_per_s:.0f} images/s")
        share = self.overhead_share
        if share is not None:
            parts.append(f"evaluation + previews {share:.0%} of the time")
        return " · ".join(parts)

    def result_line(self) -> str | None:
        """One line at the end: the best held-out scores, steps and time, where the run is saved."""
        d = self.done
        if d is None or d.reason not in ("budget", "stopped"):
            return None
        saved = f"saved as {shown_path(d.run_dir)}; use it in Predict"
        if d.best is None:
            return f"{d.steps} steps in {fmt_time(d.elapsed_s)}, no evaluation yet; {saved}"
        m = d.best.metrics
        return (
            f"IoU {m.get('mask_iou', 0):.2f}, δ<1.25 {m.get('depth_delta1', 0):.2f} after {d.steps} steps "
            f"in {fmt_time(d.elapsed_s)}; {saved}"
        )

    def progress_html(self, prefix: str = "", progress: float | None = None, idle: bool = False) -> str:
        p = self.progress if progress is None else progress
        s = self.step
        detail = self.progress_detail()
        reason = self.done.reason if self.done else ("running" if s else "idle" if idle else "starting")
        if self.failure is not None:
            reason = "error"
        state = {
            "budget": "finished",
            "nan": "stopped: the loss became NaN",
            "error": "failed",
            "idle": "not started (set it up on the left, then Start training)",
        }.get(reason, reason)
        colour = {"budget": "#22a06b", "stopped": "#d97706", "nan": "#dc2626", "error": "#dc2626"}.get(
            reason, "#3b82f6"
        )
        return (
            '<div class="md-progress">'
            '<div style="display:flex;justify-content:space-between;font-size:0.9em">'
            f"<span>{prefix}{self.title}: {state}</span><span>{p:.0%}</span></div>"
            f'<div style="height:12px;background:#e5e7eb;border-radius:6px;overflow:hidden">'
            f'<div style="height:100%;width:{p * 100:.1f}%;background:{colour};transition:width 0.3s">'
            "</div></div>"
            f'<div style="font-size:0.85em;opacity:0.8">{detail}</div></div>'
        )

    def status_md(self) -> str:
        lines = []
        if self.step is not None:
            s = self.step
            lines.append(
                f"**loss** {s.loss:.4f} (mask {s.mask_loss:.4f}, depth {s.depth_loss:.4f}) · "
                f"**lr** {s.lr:.2e} · "
                f"**{s.images_per_s:.1f} images/s**"
            )
        if self.best is not None:
            m = self.best.metrics
            lines.append(
                f"**best test loss** {self.best.test_loss:.4f} at step {self.best.step} · "
                f"IoU {m.get('mask_iou', 0):.3f}"
                f" · Dice {m.get('mask_dice', 0):.3f} · RMSE {m.get('depth_rmse', 0):.4f} · "
                f"δ<1.25 {m.get('depth_delta1', 0):.3f} · SSIM {m.get('depth_ssim', 0):.3f}"
            )
        if self.failure is not None:
            lines.append(f"**failed:** {self.failure}")
        if self.done is not None:
            result = self.result_line()
            if result:
                lines.append(f"**{result}**")
            lines.append(f"{self.done.message}  \nrun folder: `{self.done.run_dir}`")
        elif self.message != "training" and self.failure is None:
            lines.append(self.message)
        return "\n\n".join(lines)

    def loss_frame(self) -> pd.DataFrame:
        return loss_frame(
            (x, y, name)
            for series in (self.train_points, self.test_points)
            for name, points in series.items()
            for x, y in binned(points)
        )

    def lr_frame(self) -> pd.DataFrame:
        return lr_frame(binned(self.lr_points))

    def curves(self, height: int = 280) -> PlotData:
        """The Train tab's chart of this run (:func:`curves_plot`)."""
        losses = {
            name: binned(points, CURVE_POINTS)
            for series in (self.train_points, self.test_points)
            for name, points in series.items()
        }
        return curves_plot(losses, binned(self.lr_points, CURVE_POINTS), height)


def shown_path(path: str | os.PathLike) -> str:
    """``path`` relative to the working directory when it is inside it (``runs/...``), else as it is."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def curves_plot(
    losses: dict[str, list[tuple[float, float]]], lr: list[tuple[float, float]], height: int = 280
) -> PlotData:
    """Loss curves (train per step, test per evaluation) and the learning rate, as a Vega-Lite chart.

    Every series is in the legend from the start; the loss axis is logarithmic when the losses
    span :data:`LOG_SPAN` or more, else linear and fitted to the data; the learning rate has its
    own axis on the right. ``gr.Plot`` renders the spec (no altair needed).
    """
    finite = np.isfinite  # NaN/inf are not JSON, and a diverged point has no place on the axis
    rows = [
        {"step": float(x), "loss": float(y), "series": name}
        for name, pts in losses.items()
        for x, y in pts
        if finite(y)
    ]
    rows += [{"step": float(x), "lr": float(y), "series": LR_SERIES} for x, y in lr if finite(y)]
    positive = [r["loss"] for r in rows if "loss" in r and r["loss"] > 0]
    log = len(positive) >= 2 and max(positive) >= LOG_SPAN * min(positive)
    color = {
        "field": "series",
        "type": "nominal",
        "scale": {"domain": [*LOSS_COLORS, LR_SERIES], "range": [*LOSS_COLORS.values(), LR_COLOR]},
        "legend": {"orient": "bottom", "title": None, "columns": 3},
    }
    x = {"field": "step", "type": "quantitative", "title": "step"}
    # Train and test lines are two layers on one axis: the same fixed domain, fitted to the data.
    values = positive if log else [r["loss"] for r in rows if "loss" in r]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if log:
        pad = (hi / lo) ** 0.05
        domain = [lo / pad, hi * pad]
    else:
        pad = 0.05 * (hi - lo or 1.0)
        domain = [lo - pad, hi + pad]
    scale = {"type": "log" if log else "linear", "domain": domain, "nice": False, "zero": False}
    shown = "isValid(datum.loss) && datum.loss > 0" if log else "isValid(datum.loss)"

    def loss_layer(prefix: str, mark: dict[str, Any], axis: dict[str, Any] | None) -> dict[str, Any]:
        keep = f"{shown} && indexof(datum.series, '{prefix}') == 0"
        y = {"field": "loss", "type": "quantitative", "scale": scale, "axis": axis}
        return {"transform": [{"filter": keep}], "mark": mark, "encoding": {"x": x, "y": y, "color": color}}

    loss_axis = {"title": "loss (log scale)" if log else "loss"}
    lr_axis = {"orient": "right", "title": "learning rate", "format": ".1e", "grid": False}
    spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": rows},
        "height": height,
        "background": "transparent",
        "layer": [
            loss_layer("train", {"type": "line", "strokeWidth": 1.5}, loss_axis),
            loss_layer(
                "test",
                {"type": "line", "point": {"filled": True, "size": 30, "strokeOpacity": 0}, "strokeWidth": 2},
                None,
            ),
            {
                "transform": [{"filter": "isValid(datum.lr)"}],
                "mark": {"type": "line", "strokeDash": [4, 3], "strokeWidth": 1.5},
                "encoding": {
                    "x": x,
                    "y": {"field": "lr", "type": "quantitative", "axis": lr_axis, "scale": {"zero": True}},
                    "color": color,
                },
            },
        ],
        "resolve": {"scale": {"y": "independent"}},
    }
    # chart="line": Gradio fits it to the page's width and themes it (fonts, colours: its palette, in the
    # order of the legend), which needs a flat list of layers, each with a colour scale.
    return AltairPlotData(type="altair", plot=json.dumps(spec), chart="line")

"""The live view of a training run, shared by the Train and Compare tabs.

:class:`LiveRun` folds the training loop's events (``maskdepth.train``) into what a tab shows:
a progress bar, a status line, loss and learning-rate curves, and a grid of sample predictions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from maskdepth.imageio import grey_tile, rgb_tile
from maskdepth.predict import colorize_depth
from maskdepth.train import DoneEvent, EvalEvent, SamplesEvent, StepEvent

RENDER_EVERY_S = 0.5  # at most two UI refreshes a second from step events
MAX_PLOT_POINTS = 300  # per series; longer curves are averaged into bins
SAMPLE_TILE = 96  # pixels per tile in the sample-predictions grid
LOSS_COLORS = {
    "train mask": "#2563eb",
    "train depth": "#16a34a",
    "test mask": "#f97316",
    "test depth": "#dc2626",
}


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

    @property
    def progress(self) -> float:
        if self.done is not None and self.done.reason == "budget":
            return 1.0
        return self.step.progress if self.step else 0.0

    def update(self, event: Any) -> None:
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

    def progress_html(self, prefix: str = "", progress: float | None = None, idle: bool = False) -> str:
        p = self.progress if progress is None else progress
        s = self.step
        detail = ""
        if s is not None:
            total = f"/{s.total_steps}" if s.total_steps else ""
            eta = "done" if self.done else f"ETA {fmt_time(s.eta_s)}"
            detail = f"step {s.step}{total} · epoch {s.epoch + 1} · {fmt_time(s.elapsed_s)} elapsed · {eta}"
        reason = self.done.reason if self.done else ("running" if s else "idle" if idle else "starting")
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
        if self.done is not None:
            lines.append(f"**{self.done.message}**  \nrun folder: `{self.done.run_dir}`")
        elif self.message != "training":
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

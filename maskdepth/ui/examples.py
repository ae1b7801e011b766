"""The Predict tab's examples: pairs of files in ``examples/``, their outputs cached at start-up."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from maskdepth.naming import is_image_name
from maskdepth.predict.predictor import DEFAULT_RESOLUTION
from maskdepth.training.runs import is_model_dir
from maskdepth.ui.context import DEFAULT_CHOICE, AppContext


def example_pairs(folder: Path) -> tuple[list[list[str]], list[str]]:
    """([bg, fg_bg] pairs, labels) from ``<name>_bg.*`` / ``<name>_fg_bg.*`` files; synthetic first."""
    pairs, labels = [], []
    if not folder.is_dir():
        return pairs, labels
    files = {p.name: p for p in folder.iterdir() if is_image_name(p.name)}
    for name in sorted(files, key=lambda n: (not n.startswith("synthetic"), n)):
        stem, suffix = Path(name).stem, Path(name).suffix
        if not stem.endswith("_bg") or stem.endswith("_fg_bg"):
            continue
        base = stem[: -len("_bg")]
        fg = files.get(f"{base}_fg_bg{suffix}")
        if fg is not None:
            pairs.append([str(files[name]), str(fg)])
            kind = "synthetic scene" if base.startswith("synthetic") else "photo"
            labels.append(f"{base.replace('_', ' ')} ({kind})")
    return pairs, labels


def cached_examples(ctx: AppContext, inputs: list[Any], outputs: list[Any], fn: Callable[..., Any]) -> None:
    """The example pairs; with the shipped model installed, their predictions are cached at start-up
    (lazily, on first click, on ZeroGPU, where no GPU is held at start-up), so a click shows them at once.

    Clicking an example also sets the picker back to the shipped model (a hidden column), so the
    outputs shown are that model's. The cache folder is named after the model's weights, so
    other weights never show stale outputs.
    """
    pairs, labels = example_pairs(ctx.examples_dir)
    if not pairs:
        return
    cached = is_model_dir(ctx.checkpoints_dir)
    examples = gr.Examples(
        examples=[[bg, fg, DEFAULT_CHOICE, DEFAULT_RESOLUTION] for bg, fg in pairs],
        inputs=inputs,
        outputs=outputs if cached else None,
        fn=fn if cached else None,
        cache_examples=cached,
        cache_mode="lazy" if os.environ.get("SPACES_ZERO_GPU") else "eager",
        visible_columns=[0, 1],
        example_labels=labels,
        label="Examples (click one)",
        examples_per_page=12,
    )
    if cached:
        weights = ctx.checkpoints_dir / "model.safetensors"
        # The outputs' kinds too: a cache written for other outputs would fill the wrong components.
        kinds = [type(o).__name__ for o in outputs]
        stamp = f"{weights.resolve()}:{weights.stat().st_mtime_ns}:{weights.stat().st_size}:{pairs}:{DEFAULT_RESOLUTION}:{kinds}"
        key = hashlib.sha256(stamp.encode()).hexdigest()[:12]
        examples.cached_folder = examples.cached_folder.with_name(f"maskdepth-{key}-{examples.dataset._id}")
        examples.cached_file = examples.cached_folder / "log.csv"
        examples.cached_indices_file = examples.cached_folder / "indices.csv"

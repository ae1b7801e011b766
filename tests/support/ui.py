"""The app's UI modules, imported here once, and a harness for calling their handlers directly.

The hardening tests reach the app only through the names below, so a rename in ``maskdepth/ui/``
is fixed in this file alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from maskdepth.ui import compare_tab, context, models_tab, predict_tab, train_tab
from maskdepth.ui.context import DEFAULT_CHOICE, AppContext
from maskdepth.ui.errors import gradio_errors
from maskdepth.ui.jobs import TRAIN_CONCURRENCY, TRAINING
from maskdepth.ui.outputs import OutputDirs
from maskdepth.ui.predictors import PREDICT_CONCURRENCY

from .models import tiny_train_controls

__all__ = [
    "DEFAULT_CHOICE",
    "PREDICT_CONCURRENCY",
    "TRAINING",
    "TRAIN_CONCURRENCY",
    "AppContext",
    "compare_tab",
    "context",
    "gr_message",
    "gradio_errors",
    "make_ctx",
    "models_tab",
    "predict_tab",
    "tiny_controls",
    "train_stream",
    "train_tab",
]


def make_ctx(root: Path, checkpoints: Path, *, on_space: bool = False) -> AppContext:
    """An app context whose every folder (runs, data, outputs) is under ``root``."""
    ctx = context.make_context(
        checkpoints,
        root / "runs",
        data_dir=root / "data",
        comparison_dir=root / "comparison",
        examples_dir=root / "examples",
        on_space=on_space,
    )
    ctx.outputs = OutputDirs(root / "outputs")
    return ctx


def gr_message(call: Callable[[], Any]) -> str:
    """The message a user sees when ``call`` (a handler) fails: it must be a gr.Error of one line."""
    with pytest.raises(gr.Error) as shown:
        result = call()
        if isinstance(result, Iterator):
            list(result)
    message = shown.value.message
    assert "Traceback" not in message and "\n" not in message.strip(), message
    return message


def tiny_controls(**overrides: Any) -> dict[str, Any]:
    """The Train tab's controls for a short run on 16 synthetic 32 px samples."""
    return tiny_train_controls(
        **{"budget": 2, "eval_every": 1, "eval_samples": 4, "sample_every": 0, **overrides}
    )


def train_stream(ctx: AppContext, owner: str = "me", **overrides: Any) -> Iterator[tuple[Any, ...]]:
    """The Train tab's handler on the synthetic dataset, as the Start button calls it (errors wrapped)."""
    return gradio_errors(train_tab.train_stream)(
        ctx, owner, dataset_kind="synthetic", zip_file=None, folder=None, **tiny_controls(**overrides)
    )

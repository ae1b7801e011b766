"""One app instance's folders and shared objects, the Space path policy, and the model pickers.

:class:`AppContext` holds the folders, the predictor cache and the output folders; its
``resolve_source`` / ``local_path`` keep a Space's visitors inside the runs and shipped-model
folders. :func:`register_picker` / :func:`finish` keep every model dropdown up to date, with the
runs of the visitor who looks at it (on a Space each visitor has their own; see
:mod:`maskdepth.ui.visitors`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from maskdepth.data import zipsafe
from maskdepth.errors import CheckpointError, InputError, MaskDepthError
from maskdepth.hub.transfer import is_repo_id
from maskdepth.training.runs import RunInfo, is_model_dir, list_runs
from maskdepth.ui.outputs import OutputDirs
from maskdepth.ui.predictors import PREDICTOR_CACHE_SIZE, PredictorCache
from maskdepth.ui.visitors import STORAGE_KEY, Visitors, on_page_load, runs_folder, visitor_of

DEFAULT_CHOICE = "default (shipped)"
# Queue size: a flood of requests waits in a bounded queue instead of exhausting memory.
QUEUE_MAX_SIZE = 64


@dataclass
class AppContext:
    """Folders and shared objects of one app instance (tests build several with tmp folders)."""

    checkpoints_dir: Path  # the shipped default model
    runs_dir: Path  # trained runs (and new comparisons) go here
    data_dir: Path  # extracted dataset uploads
    comparison_dir: Path  # the shipped comparison (results.json + gallery/)
    examples_dir: Path
    on_space: bool = False  # SPACE_ID is set: no local paths, OAuth tokens only
    # Limits on an uploaded dataset zip (files, extracted bytes); see maskdepth.data.zipsafe.
    upload_max_files: int = zipsafe.MAX_FILES
    upload_max_bytes: int = zipsafe.MAX_TOTAL_BYTES
    hub_models: list[str] = field(default_factory=list)  # Hub ids loaded in this app, for the picker
    predictors: PredictorCache = field(default_factory=lambda: PredictorCache(PREDICTOR_CACHE_SIZE))
    outputs: OutputDirs | None = None
    # Dropdowns refreshed after model-changing events (with the function giving their choices for a
    # visitor), and the events after which they refresh.
    pickers: list[tuple[Any, Callable[[str | None], list[Any]]]] = field(default_factory=list)
    model_events: list[Any] = field(default_factory=list)
    # (function, outputs) run on every page load, not in the public API (see on_page_load).
    page_loads: list[tuple[Callable[[], Any], Any]] = field(default_factory=list)
    # (generator of a gr.Request, outputs, event options) streamed on every page load, e.g. re-attaching
    # to a training.
    page_streams: list[tuple[Callable[..., Any], Any, dict[str, Any]]] = field(default_factory=list)
    visitors: Visitors | None = None

    def __post_init__(self) -> None:
        self.checkpoints_dir, self.runs_dir = Path(self.checkpoints_dir), Path(self.runs_dir)
        self.data_dir, self.comparison_dir = Path(self.data_dir), Path(self.comparison_dir)
        self.examples_dir = Path(self.examples_dir)
        if self.outputs is None:
            self.outputs = OutputDirs()
        if self.visitors is None:
            self.visitors = Visitors(self.runs_dir)

    def on_page_load(self, fn: Callable[[], Any], outputs: Any) -> None:
        """Run ``fn`` on every page load into ``outputs``, as a private event.

        Instead of ``gr.Markdown(callable)``: Gradio makes that a public, unnamed ``/lambda_N`` endpoint.
        """
        self.page_loads.append((fn, outputs))

    def on_page_stream(self, fn: Callable[..., Any], outputs: Any, **options: Any) -> None:
        """Stream ``fn(request)`` (a generator) into ``outputs`` on every page load; private unless
        ``options`` (of the load event) give it an ``api_name`` and ``api_visibility="public"``."""
        self.page_streams.append((fn, outputs, options))

    def visitor(self, request: Any) -> str:
        """Who ``request`` is from (:func:`maskdepth.ui.visitors.visitor_of`)."""
        return visitor_of(self.visitors, request, on_space=self.on_space)

    def visitor_runs_dir(self, visitor: str | None) -> Path:
        """Where ``visitor``'s new runs go: the runs folder, or on a Space their own folder in it."""
        if not self.on_space or visitor is None:
            return self.runs_dir
        return self.runs_dir / runs_folder(self.visitors, visitor)

    # The model picker ------------------------------------------------------------------------

    def runs(self, visitor: str | None = None) -> list[RunInfo]:
        """Every run, newest first; on a Space only ``visitor``'s (none without a visitor).

        Names are relative to the runs folder, so a visitor's run is ``visitor-.../name``.
        """
        if not self.on_space:
            return list_runs(self.runs_dir)
        if visitor is None:
            return []
        folder = runs_folder(self.visitors, visitor)
        return [
            dataclasses.replace(r, name=f"{folder}/{r.name}") for r in list_runs(self.runs_dir / folder, 1)
        ]

    def model_choices(self, visitor: str | None = None) -> list[tuple[str, str]]:
        """(label, value) pairs: the shipped model, the (visitor's) runs, newest first, Hub ids loaded here."""
        default_label = (
            DEFAULT_CHOICE if is_model_dir(self.checkpoints_dir) else f"{DEFAULT_CHOICE} (missing)"
        )
        choices = [(default_label, DEFAULT_CHOICE)]
        choices += [(f"run: {r.label()}", r.name) for r in self.runs(visitor)]
        choices += [(f"Hub: {repo}", repo) for repo in self.hub_models]
        return choices

    def local_model_choices(self, visitor: str | None = None) -> list[tuple[str, str]]:
        """The shipped model and the runs (what can be pushed)."""
        return [c for c in self.model_choices(visitor) if c[1] not in self.hub_models]

    def run_choices(self, visitor: str | None = None) -> list[tuple[str, str]]:
        """Runs only (for "resume from" and "push")."""
        return [(r.label(), r.name) for r in self.runs(visitor)]

    def add_hub_model(self, repo_id: str) -> None:
        if repo_id not in self.hub_models:
            self.hub_models.append(repo_id)

    def resolve_source(self, value: str | None) -> str:
        """The picker's value -> what ``load_model`` takes (a folder path or a Hub repo id).

        Accepts the default entry, a run name (relative to the runs folder), a Hub id
        ``owner/name``, or (only when not on a Space) any local path. On a Space, paths must
        stay inside the runs folder or the checkpoints folder.
        """
        value = (value or "").strip() or DEFAULT_CHOICE
        if value == DEFAULT_CHOICE or value.startswith(f"{DEFAULT_CHOICE} "):
            if not is_model_dir(self.checkpoints_dir):
                raise CheckpointError(
                    f"the shipped default model is not installed yet ({self.checkpoints_dir} has no "
                    "config.json + model.safetensors): train a model in the Train tab, load one in the "
                    "Models tab, or pick a run"
                )
            return str(self.checkpoints_dir)
        run = self.runs_dir / value
        if ".." not in Path(value).parts and not Path(value).is_absolute() and is_model_dir(run):
            # A link inside the runs folder must not open a door out of it on a Space.
            if self.on_space and not run.resolve().is_relative_to(self.runs_dir.resolve()):
                raise InputError(
                    f"the run {value!r} links to a folder outside the runs folder; on this Space only runs "
                    "inside it can be used: pick a run from the list"
                )
            return str(run)
        if is_repo_id(value) and not Path(value).exists():
            return value  # a Hub repo id; load_model checks it further
        return str(self.local_path(value, what="model"))

    def local_path(self, value: str, *, what: str) -> Path:
        """A user-typed path, allow-listed on a Space (runs and checkpoints folders only)."""
        path = Path(value).expanduser()
        if self.on_space:
            if ".." in path.parts:
                raise InputError(f"the {what} path {value!r} contains '..': pick a run from the list instead")
            resolved = (path if path.is_absolute() else Path.cwd() / path).resolve()
            roots = [self.runs_dir.resolve(), self.checkpoints_dir.resolve()]
            if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
                raise InputError(
                    f"on this Space a {what} must be a run from the list, the shipped model or a Hub repo id "
                    "(owner/name); other paths are not allowed"
                )
            return resolved
        return path


# ---- the model pickers ------------------------------------------------------------------------


def picker_updates(ctx: AppContext, visitor: str | None = None) -> list[Any]:
    """New choices for every registered model picker, as ``visitor`` sees them (values are kept)."""
    return [gr.update(choices=choices(visitor)) for _, choices in ctx.pickers]


def register_picker(
    ctx: AppContext, dropdown: Any, choices: Callable[[str | None], list[Any]] | None = None
) -> Any:
    """Add a dropdown to the pickers refreshed after a training, a load, a refresh click and on page load.

    ``choices(visitor)`` recomputes its choices (default: every model source, ``ctx.model_choices``).
    """
    ctx.pickers.append((dropdown, choices or ctx.model_choices))
    return dropdown


def finish(ctx: AppContext, demo: gr.Blocks) -> None:
    """Wire what spans tabs: on a Space, who the visitor is (first, on page load); pickers refresh after
    each model-changing event and on page load; the tabs' page-load events and streams. All private:
    none of them is part of the API."""
    private: dict[str, Any] = {"api_visibility": "private"}
    first = None
    if ctx.on_space:  # the browser's id, kept in its localStorage: a reload is the same visitor
        browser = gr.BrowserState(storage_key=STORAGE_KEY, secret=ctx.visitors.secret)

        def identify(browser_id: str | None, request: gr.Request) -> str:
            return on_page_load(ctx.visitors, browser_id, request)

        first = demo.load(identify, browser, browser, queue=False, **private)

    def on_load(fn: Callable[..., Any], outputs: Any, **kwargs: Any) -> Any:
        return (
            first.then(fn, outputs=outputs, **kwargs) if first else demo.load(fn, outputs=outputs, **kwargs)
        )

    for fn, fn_outputs in ctx.page_loads:
        on_load(fn, fn_outputs, queue=False, **private)
    for fn, fn_outputs, options in ctx.page_streams:  # queued (streams need it), no concurrency limit
        on_load(
            fn, fn_outputs, **{"concurrency_limit": None, "show_progress": "hidden", **private, **options}
        )
    if not ctx.pickers:
        return

    outputs = [dropdown for dropdown, _ in ctx.pickers]

    def refresh(request: gr.Request) -> list[Any]:
        return picker_updates(ctx, ctx.visitor(request))

    for event in ctx.model_events:
        event.then(refresh, outputs=outputs, queue=False, **private)
    on_load(refresh, outputs, queue=False, **private)


def env_path(name: str, default: str | os.PathLike) -> Path:
    """A folder from an environment variable, else ``default``."""
    return Path(os.environ.get(name) or default)


# ---- app start-up ------------------------------------------------------------------------------------


def make_context(
    checkpoints_dir: str | os.PathLike,
    runs_dir: str | os.PathLike | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    comparison_dir: str | os.PathLike = "comparisons/default",
    examples_dir: str | os.PathLike = "examples",
    on_space: bool | None = None,
) -> AppContext:
    """The app's folders: arguments first, then ``MASKDEPTH_RUNS`` / ``MASKDEPTH_DATA``, then defaults."""
    return AppContext(
        checkpoints_dir=Path(checkpoints_dir),
        runs_dir=Path(runs_dir) if runs_dir else env_path("MASKDEPTH_RUNS", "runs"),
        data_dir=Path(data_dir) if data_dir else env_path("MASKDEPTH_DATA", "data_cache/app"),
        comparison_dir=Path(comparison_dir),
        examples_dir=Path(examples_dir),
        on_space=bool(os.environ.get("SPACE_ID")) if on_space is None else on_space,
    )


def warm_up(ctx: AppContext) -> str:
    """Load the shipped model into the cache (the first prediction is then fast); returns a console line."""
    if not is_model_dir(ctx.checkpoints_dir):
        return (
            f"maskdepth: no shipped model in {ctx.checkpoints_dir} (config.json + model.safetensors) yet. "
            "The app starts anyway: train a model in the Train tab, or load one in the Models tab."
        )
    try:
        predictor = ctx.predictors.get(str(ctx.checkpoints_dir))
    except MaskDepthError as err:
        return f"maskdepth: cannot load the shipped model in {ctx.checkpoints_dir} ({err}); starting anyway."
    m = predictor.model
    return f"maskdepth: loaded the shipped model ({m.in_channels}-channel W-Net at {m.image_size}px)."

"""Train tab: pick data, losses and a budget; watch progress, loss curves and sample predictions live.

The controls are built from :func:`maskdepth.config.settings` (every setting with ``ui=True``): a
setting's label, help, range and choices are stated once, in the config, for the CLI and this tab.
Four settings have controls of their own here: the dataset (synthetic, a zip upload or a folder),
the budget (one number in minutes, epochs or steps), resume (a run from the list) and the run
folder (a name under the runs folder).

The handler is a generator: ``train()`` runs in a background thread (:class:`ThreadJob`) and
every few events the tab re-renders. One training at a time per process (``TRAINING``).
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from maskdepth.config import Setting, setting, settings
from maskdepth.data.folder import open_folder_dataset
from maskdepth.errors import DatasetError, InputError, MaskDepthError
from maskdepth.naming import slug
from maskdepth.runs import write_run_card
from maskdepth.train import DoneEvent, EvalEvent, SamplesEvent, TrainConfig, TrainResult, train
from maskdepth.ui.config_form import control, from_control, named_handler
from maskdepth.ui.context import AppContext, register_picker
from maskdepth.ui.errors import gradio_errors
from maskdepth.ui.jobs import TRAIN_CONCURRENCY, TRAINING, ThreadJob, cli_command, session_of
from maskdepth.ui.live import RENDER_EVERY_S, LiveRun, loss_plot, lr_frame

DATASET_KINDS = ("synthetic", "zip upload", "folder path")
BUDGET_KINDS = tuple(s.name for s in settings() if s.group == "budget")  # epochs, steps, minutes
NO_RESUME = "(start from scratch)"
# Settings with a control of their own in this tab (see the module docstring); the run folder's is a name.
OWN_CONTROLS = {"dataset", *BUDGET_KINDS, "resume", "out_dir"}
SYNTHETIC = ("backgrounds", "foregrounds", "positions")  # shown for the synthetic dataset only
# Where each settings group's controls go: None = in the main column, else the accordion's title.
PLACES = {
    "data": None,
    "losses": None,
    "optimisation": "Optimisation",
    "model": "Model, resume and evaluation",
    "run folder": "Model, resume and evaluation",
    "evaluation and run": "Model, resume and evaluation",
}
# The app's starting values where they differ from TrainConfig's (the shipped recipe trains for an
# hour on 16,000 samples; a first run in the app should take two minutes), and the model widths offered.
APP_DEFAULTS: dict[str, Any] = {
    "backgrounds": 10,
    "foregrounds": 10,
    "positions": 5,
    "eval_every": 50,
    "eval_samples": 128,
    "sample_every": 10,
}
APP_CHOICES: dict[str, list[Any]] = {"base_width": [4, 8, 16, 32]}
BUDGET_DEFAULT = ("minutes", 2)
TRAIN_API = (
    "Train a W-Net, streaming (progress html, status markdown, loss curves, lr curve, sample predictions) "
    "until the budget is spent. One training at a time per app: a second one is refused at once. The run "
    "folder then appears in the model pickers, so /predict can use it by name."
)


def form_settings() -> list[Setting]:
    """The settings this tab shows as generic controls (``ui=True``, minus :data:`OWN_CONTROLS`)."""
    return [s for s in settings() if s.ui and s.name not in OWN_CONTROLS]


# ---- configuration ------------------------------------------------------------------------------------


def resume_choices(ctx: AppContext) -> list[Any]:
    return [NO_RESUME, *ctx.run_choices()]


def dataset_source(ctx: AppContext, kind: str, zip_file: str | None, folder: str | None) -> str:
    """``TrainConfig.dataset`` for the UI's choice; extracts an uploaded zip into its own folder."""
    if kind == "synthetic":
        return "synthetic"
    if kind == "zip upload":
        if not zip_file:
            raise InputError(
                "upload a dataset zip (seed layout: Fg-Bg/, Fg-Bg-Mask/, Depth/, bg*.jpg; "
                "or plain: bg/, fg_bg/, mask/, depth/), or pick the synthetic dataset"
            )
        from maskdepth.data.zipsafe import safe_extract

        dest = ctx.data_dir / "uploads" / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        root = safe_extract(
            zip_file, dest, max_files=ctx.upload_max_files, max_total_bytes=ctx.upload_max_bytes
        )
        try:
            open_folder_dataset(root)  # lists the files only: a wrong layout is reported now, not in the run
        except MaskDepthError:
            shutil.rmtree(dest, ignore_errors=True)  # nothing to train on: keep no copy
            raise
        return str(root)
    if kind == "folder path":
        if ctx.on_space:
            raise InputError(
                "folder paths are only available when the app runs locally: upload a zip instead"
            )
        if not folder or not Path(folder).expanduser().is_dir():
            raise DatasetError(f"no folder at {folder!r}: type the path of a dataset folder on this machine")
        open_folder_dataset(Path(folder).expanduser())
        return str(Path(folder).expanduser())
    raise InputError(f"unknown dataset choice {kind!r}; choose one of {', '.join(DATASET_KINDS)}")


def build_config(
    ctx: AppContext,
    *,
    dataset: str,
    budget_kind: str,
    budget: float,
    resume: str | None,
    run_name: str | None,
    **values: Any,
) -> TrainConfig:
    """A TrainConfig from the tab's controls (``values``: :func:`form_settings` by name); the run folder is
    new under the runs folder."""
    if budget_kind not in BUDGET_KINDS:
        raise InputError(f"budget must be one of {', '.join(BUDGET_KINDS)}, got {budget_kind!r}")
    if budget is None or budget <= 0:
        raise InputError(f"the budget ({budget_kind}) must be > 0")
    expected = {s.name for s in form_settings()}
    if set(values) != expected:
        unknown, missing = sorted(set(values) - expected), sorted(expected - set(values))
        raise InputError(f"train settings: unknown {unknown}, missing {missing}")
    fields = {s.name: from_control(s, values[s.name]) for s in form_settings()}
    fields[budget_kind] = from_control(setting(budget_kind), budget)
    resume_path = None
    if resume and resume != NO_RESUME:
        resume_path = ctx.resolve_source(resume)
    losses = f"{fields['mask_loss']}-{fields['depth_loss']}"
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{slug(run_name or losses)}"
    return TrainConfig(dataset=dataset, resume=resume_path, out_dir=str(ctx.runs_dir / name), **fields)


# ---- the handler ------------------------------------------------------------------------------------


def train_stream(
    ctx: AppContext,
    owner: str,
    *,
    dataset_kind: str,
    zip_file: str | None,
    folder: str | None,
    **controls: Any,
) -> Iterator[tuple[Any, ...]]:
    """Yield (progress html, status markdown, loss frame, lr frame, sample rows) while a run trains.

    Refuses at once if another training holds the slot. Stopping (the Stop button) or
    leaving (closing the tab, cancelling the API job) ends the run at its next step; the
    best checkpoint so far is kept and the run's model card is written either way.
    """
    stop = TRAINING.acquire("training", owner)
    dataset = None
    try:
        view = LiveRun("training")
        view.message = "preparing the dataset..."
        yield _render(view)
        dataset = dataset_source(ctx, dataset_kind, zip_file, folder)
        cfg = build_config(ctx, dataset=dataset, **controls)
    except BaseException:
        finished(ctx, stop, dataset)
        raise

    def target(emit: Any) -> TrainResult:
        result = train(cfg, emit, stop)
        write_run_card(result.run_dir, command=cli_command(cfg))
        return result

    job = ThreadJob(target, stop=stop, on_exit=lambda: finished(ctx, stop, dataset), name="maskdepth-train")
    last = 0.0
    for event in job.events():
        if event is not None:
            view.update(event)
            TRAINING.set_progress(stop, view.progress)
        # Render on what matters at once; step events at most every RENDER_EVERY_S.
        if (
            isinstance(event, (EvalEvent, SamplesEvent, DoneEvent))
            or time.monotonic() - last >= RENDER_EVERY_S
        ):
            last = time.monotonic()
            yield _render(view)
    job.join()
    if job.error is not None:
        raise job.error
    if view.done is not None and view.done.reason == "nan":
        gr.Warning(view.done.message)
    else:
        gr.Info(f"{view.done.message if view.done else 'done'}: the run is now in the model pickers")
    yield _render(view)


def finished(ctx: AppContext, stop: Any, dataset: str | None) -> None:
    """A run ended (or never started): free the training slot; on a Space, delete the extracted upload.

    Locally an extracted zip is kept, so the command in the run's model card can reproduce it.
    """
    TRAINING.release(stop)
    uploads = (ctx.data_dir / "uploads").resolve()
    if ctx.on_space and dataset and Path(dataset).resolve().is_relative_to(uploads):
        shutil.rmtree(uploads / Path(dataset).resolve().relative_to(uploads).parts[0], ignore_errors=True)


def _render(view: LiveRun) -> tuple[Any, ...]:
    return view.progress_html(), view.status_md(), view.loss_frame(), view.lr_frame(), view.samples


def stop_training(owner: str) -> None:
    """The Stop button: ask this session's run to end at its next step (the message says what happened)."""
    gr.Info(TRAINING.request_stop(owner))


# ---- layout ----------------------------------------------------------------------------------------------


@dataclass
class TrainTab:
    start: gr.Button
    stop: gr.Button
    outputs: list[Any]


def _settings_controls(ctx: AppContext, place: str | None, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The controls of the settings shown at ``place`` (see :data:`PLACES`), by setting name, in the
    config's order; one row per settings group. The resume picker sits where ``resume`` is declared."""
    defaults = TrainConfig(steps=1)
    shown = [s for s in settings() if s.ui and PLACES.get(s.group, "") == place and s.name not in skip]
    out: dict[str, Any] = {}
    for group in dict.fromkeys(s.group for s in shown):
        with gr.Row():
            for s in (s for s in shown if s.group == group):
                if s.name == "resume":
                    picker = gr.Dropdown(resume_choices(ctx), value=NO_RESUME, label="Resume from a run")
                    out["resume"] = register_picker(ctx, picker, lambda: resume_choices(ctx))
                elif s.name not in OWN_CONTROLS:
                    value = APP_DEFAULTS.get(s.name, getattr(defaults, s.name))
                    out[s.name] = control(s, value, choices=APP_CHOICES.get(s.name))
    return out


def _data_controls(ctx: AppContext) -> tuple[dict[str, Any], list[Any]]:
    """Dataset choice, synthetic sizes, zip and folder: (controls by parameter name, the boxes to toggle)."""
    kinds = [k for k in DATASET_KINDS if not (ctx.on_space and k == "folder path")]
    controls: dict[str, Any] = {
        "dataset_kind": gr.Radio(kinds, value="synthetic", label=setting("dataset").label)
    }
    with gr.Group(visible=True) as synthetic_box:
        sizes = {name: control(setting(name), APP_DEFAULTS[name]) for name in SYNTHETIC}
        samples_md = gr.Markdown(_samples_text(*(APP_DEFAULTS[name] for name in SYNTHETIC)))
    controls.update(sizes)
    controls["zip_file"] = gr.File(
        file_types=[".zip"], label="Dataset zip (seed or plain layout)", visible=False
    )
    controls["folder"] = gr.Textbox(
        label="Dataset folder on this machine",
        visible=False,
        placeholder="/path/to/dataset (seed or plain layout)",
    )
    for slider in sizes.values():
        slider.change(_samples_text, list(sizes.values()), samples_md, api_visibility="private", queue=False)
    return controls, [synthetic_box, controls["zip_file"], controls["folder"]]


def _controls(ctx: AppContext) -> dict[str, Any]:
    """Every input of the Start button, by the name the handler (and the API) gives it."""
    controls, boxes = _data_controls(ctx)
    controls.update(_settings_controls(ctx, None, skip=SYNTHETIC))
    with gr.Row():
        controls["budget_kind"] = gr.Radio(list(BUDGET_KINDS), value=BUDGET_DEFAULT[0], label="Budget in")
        controls["budget"] = gr.Number(value=BUDGET_DEFAULT[1], minimum=0, label="Budget")
    for title in dict.fromkeys(t for t in PLACES.values() if t):
        with gr.Accordion(title, open=False):
            controls.update(_settings_controls(ctx, title))
    controls["run_name"] = gr.Textbox(label="Run name (optional)", placeholder="e.g. bce-ssim-try1")

    def on_kind(kind: str) -> tuple[Any, ...]:
        return tuple(gr.update(visible=kind == k) for k in ("synthetic", "zip upload", "folder path"))

    controls["dataset_kind"].change(
        on_kind, controls["dataset_kind"], boxes, api_visibility="private", queue=False
    )
    return controls


def _outputs() -> list[Any]:
    """Progress, status, loss and lr curves, sample predictions (what ``train_stream`` yields)."""
    progress = gr.HTML(LiveRun().progress_html(idle=True), label="Progress")
    status = gr.Markdown(label="Status")
    loss_curves = loss_plot("Loss curves (train per step, test per evaluation)", height=300)
    lr_plot = gr.LinePlot(lr_frame(), x="step", y="lr", label="Learning rate", height=160)
    samples = gr.Image(
        label="Sample predictions (test samples), left to right: input | mask target | "
        "mask predicted | depth target | depth predicted",
        format="png",
        interactive=False,
    )
    return [progress, status, loss_curves, lr_plot, samples]


def build(ctx: AppContext) -> TrainTab:
    """Lay out the tab and wire its events (call inside a ``gr.Tab``)."""
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            controls = _controls(ctx)
            with gr.Row():
                start = gr.Button("Start training", variant="primary")
                stop = gr.Button("Stop", variant="stop")
        with gr.Column(scale=3):
            outputs = _outputs()

    def on_train(request: gr.Request | None = None, **values: Any) -> Iterator[tuple[Any, ...]]:
        """Train a W-Net with these settings (see the /train API description)."""
        yield from train_stream(ctx, session_of(request), **values)

    @gradio_errors
    def on_stop(request: gr.Request) -> None:
        stop_training(session_of(request))

    handler = gradio_errors(named_handler(on_train, list(controls)))
    event = start.click(
        handler,
        list(controls.values()),
        outputs,
        api_name="train",
        api_description=TRAIN_API,
        concurrency_id="train",
        concurrency_limit=TRAIN_CONCURRENCY,
        show_progress="hidden",
    )
    ctx.model_events.append(event)
    # Not queued behind the training: a stop must get through while the run holds the train queue.
    stop.click(
        on_stop,
        None,
        None,
        api_name="stop_training",
        api_description="Stop the training this session started, at its next step (the best checkpoint so far "
        "is kept); a training started by another session is left running.",
        concurrency_id="stop",
        concurrency_limit=None,
    )
    return TrainTab(start=start, stop=stop, outputs=outputs)


def _samples_text(backgrounds: float, foregrounds: float, positions: float) -> str:
    n = int(backgrounds) * int(foregrounds) * int(positions) * 2
    return f"{n:,} samples (each placement also flipped); 70% train, 30% test"

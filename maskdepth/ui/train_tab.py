"""Train tab: pick data, losses and a budget; watch progress, loss curves and sample predictions live.

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

from maskdepth.data.folder import open_folder_dataset
from maskdepth.errors import DatasetError, InputError, MaskDepthError
from maskdepth.losses import loss_names
from maskdepth.naming import slug
from maskdepth.runs import write_run_card
from maskdepth.train import (
    OPTIMIZERS,
    SCHEDULERS,
    DoneEvent,
    EvalEvent,
    SamplesEvent,
    TrainConfig,
    TrainResult,
    train,
)
from maskdepth.ui.context import AppContext, register_picker
from maskdepth.ui.errors import gradio_errors
from maskdepth.ui.jobs import TRAIN_CONCURRENCY, TRAINING, ThreadJob, cli_command, session_of
from maskdepth.ui.live import RENDER_EVERY_S, LiveRun, loss_plot, lr_frame

DATASET_KINDS = ("synthetic", "zip upload", "folder path")
BUDGET_KINDS = ("minutes", "epochs", "steps")
NO_RESUME = "(start from scratch)"
TRAIN_API = (
    "Train a W-Net, streaming (progress html, status markdown, loss curves, lr curve, sample predictions) "
    "until the budget is spent. One training at a time per app: a second one is refused at once. The run "
    "folder then appears in the model pickers, so /predict can use it by name."
)


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
    backgrounds: int,
    foregrounds: int,
    positions: int,
    mask_loss: str,
    depth_loss: str,
    optimizer: str,
    lr: float,
    scheduler: str,
    batch_size: int,
    size: int,
    budget_kind: str,
    budget: float,
    base_width: int,
    in_channels: int,
    resume: str | None,
    resume_lr: str,
    eval_every: int,
    eval_samples: int,
    sample_every: int,
    run_name: str | None,
) -> TrainConfig:
    """A TrainConfig from the tab's controls (the run folder is new under the runs folder)."""
    if budget_kind not in BUDGET_KINDS:
        raise InputError(f"budget must be one of {', '.join(BUDGET_KINDS)}, got {budget_kind!r}")
    if budget is None or budget <= 0:
        raise InputError(f"the budget ({budget_kind}) must be > 0")
    budget_value: dict[str, Any] = {budget_kind: int(budget) if budget_kind == "steps" else float(budget)}
    resume_path = None
    if resume and resume != NO_RESUME:
        resume_path = ctx.resolve_source(resume)
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{slug(run_name or f'{mask_loss}-{depth_loss}')}"
    return TrainConfig(
        dataset=dataset,
        backgrounds=int(backgrounds),
        foregrounds=int(foregrounds),
        positions=int(positions),
        mask_loss=mask_loss,
        depth_loss=depth_loss,
        optimizer=optimizer,
        lr=float(lr),
        scheduler=scheduler,
        batch_size=int(batch_size),
        size=int(size),
        base_width=int(base_width),
        in_channels=int(in_channels),
        resume=resume_path,
        resume_lr=resume_lr,
        eval_every=int(eval_every) or None,
        eval_samples=int(eval_samples),
        sample_every=int(sample_every),
        out_dir=str(ctx.runs_dir / name),
        **budget_value,
    )


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


def build(ctx: AppContext) -> TrainTab:
    """Lay out the tab and wire its events (call inside a ``gr.Tab``)."""
    names = loss_names()
    defaults = TrainConfig(steps=1)
    kinds = [k for k in DATASET_KINDS if not (ctx.on_space and k == "folder path")]
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            dataset = gr.Radio(kinds, value="synthetic", label="Dataset")
            with gr.Group(visible=True) as synthetic_box:
                backgrounds = gr.Slider(1, 100, value=10, step=1, label="backgrounds (rooms)")
                foregrounds = gr.Slider(1, 100, value=10, step=1, label="foregrounds (objects)")
                positions = gr.Slider(1, 20, value=5, step=1, label="positions per (room, object)")
                samples_md = gr.Markdown(_samples_text(10, 10, 5))
            zip_file = gr.File(file_types=[".zip"], label="Dataset zip (seed or plain layout)", visible=False)
            folder = gr.Textbox(
                label="Dataset folder on this machine",
                visible=False,
                placeholder="/path/to/dataset (seed or plain layout)",
            )
            with gr.Row():
                mask_loss = gr.Dropdown(names["mask"], value=defaults.mask_loss, label="Mask loss")
                depth_loss = gr.Dropdown(names["depth"], value=defaults.depth_loss, label="Depth loss")
            with gr.Row():
                budget_kind = gr.Radio(list(BUDGET_KINDS), value="minutes", label="Budget in")
                budget = gr.Number(value=2, minimum=0, label="Budget")
            with gr.Accordion("Optimisation", open=False):
                with gr.Row():
                    optimizer = gr.Dropdown(list(OPTIMIZERS), value=defaults.optimizer, label="Optimiser")
                    scheduler = gr.Dropdown(list(SCHEDULERS), value=defaults.scheduler, label="LR schedule")
                lr = gr.Number(value=defaults.lr, label="Learning rate (peak for onecycle)")
                batch_size = gr.Slider(1, 256, value=defaults.batch_size, step=1, label="Batch size")
                size = gr.Slider(32, 224, value=defaults.size, step=32, label="Training resolution (pixels)")
            with gr.Accordion("Model, resume and evaluation", open=False):
                base_width = gr.Dropdown([4, 8, 16, 32], value=32, label="Width (32 = the seed's W-Net)")
                in_channels = gr.Radio(
                    [6, 3], value=6, label="Input channels (6 = bg + fg_bg, 3 = fg_bg only)"
                )
                resume = gr.Dropdown(resume_choices(ctx), value=NO_RESUME, label="Resume from a run")
                register_picker(ctx, resume, lambda: resume_choices(ctx))
                resume_lr = gr.Radio(
                    ["continue", "restart"],
                    value="continue",
                    label="On resume, the learning rate",
                    info="continue where the scheduler left it, or restart from its initial value",
                )
                eval_every = gr.Number(
                    value=50, precision=0, label="Evaluate every N steps (0 = once per epoch)"
                )
                eval_samples = gr.Number(
                    value=128, precision=0, label="Test samples per evaluation (0 = all)"
                )
                sample_every = gr.Number(
                    value=10, precision=0, label="Refresh sample predictions every N steps"
                )
            run_name = gr.Textbox(label="Run name (optional)", placeholder="e.g. bce-ssim-try1")
            with gr.Row():
                start = gr.Button("Start training", variant="primary")
                stop = gr.Button("Stop", variant="stop")
        with gr.Column(scale=3):
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

    def on_kind(kind: str) -> tuple[Any, ...]:
        return (
            gr.update(visible=kind == "synthetic"),
            gr.update(visible=kind == "zip upload"),
            gr.update(visible=kind == "folder path"),
        )

    dataset.change(on_kind, dataset, [synthetic_box, zip_file, folder], api_visibility="private", queue=False)
    sizes = [backgrounds, foregrounds, positions]
    for slider in sizes:
        slider.change(_samples_text, sizes, samples_md, api_visibility="private", queue=False)

    @gradio_errors
    def on_train(
        dataset_kind: str,
        backgrounds: int,
        foregrounds: int,
        positions: int,
        zip_file: str | None,
        folder: str | None,
        mask_loss: str,
        depth_loss: str,
        optimizer: str,
        lr: float,
        scheduler: str,
        batch_size: int,
        size: int,
        budget_kind: str,
        budget: float,
        base_width: int,
        in_channels: int,
        resume: str | None,
        resume_lr: str,
        eval_every: int,
        eval_samples: int,
        sample_every: int,
        run_name: str | None,
        request: gr.Request,
    ) -> Iterator[tuple[Any, ...]]:
        yield from train_stream(
            ctx,
            session_of(request),
            dataset_kind=dataset_kind,
            zip_file=zip_file,
            folder=folder,
            backgrounds=backgrounds,
            foregrounds=foregrounds,
            positions=positions,
            mask_loss=mask_loss,
            depth_loss=depth_loss,
            optimizer=optimizer,
            lr=lr,
            scheduler=scheduler,
            batch_size=batch_size,
            size=size,
            budget_kind=budget_kind,
            budget=budget,
            base_width=base_width,
            in_channels=in_channels,
            resume=resume,
            resume_lr=resume_lr,
            eval_every=eval_every,
            eval_samples=eval_samples,
            sample_every=sample_every,
            run_name=run_name,
        )

    @gradio_errors
    def on_stop(request: gr.Request) -> None:
        stop_training(session_of(request))

    inputs = [
        dataset,
        backgrounds,
        foregrounds,
        positions,
        zip_file,
        folder,
        mask_loss,
        depth_loss,
        optimizer,
        lr,
        scheduler,
        batch_size,
        size,
        budget_kind,
        budget,
        base_width,
        in_channels,
        resume,
        resume_lr,
        eval_every,
        eval_samples,
        sample_every,
        run_name,
    ]
    outputs = [progress, status, loss_curves, lr_plot, samples]
    event = start.click(
        on_train,
        inputs,
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

"""A training as a server-side job: ``/train`` starts it, any page of its owner watches it.

:func:`start_training` takes the process's training slot and starts a :class:`~maskdepth.ui.jobs.Job`
whose thread prepares the dataset (a zip extraction too) and trains. :func:`stream` renders a job
for a Gradio generator handler: the ``/train`` handler that started it, and every page load
of the same owner (a reload, a second tab), which picks it up where it is, or shows the summary
of the owner's last finished run. Leaving a stream (closing the page, cancelling the API call)
never stops the run; only Stop (:meth:`~maskdepth.ui.jobs.TrainingSlot.request_stop`) does.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from maskdepth.data.folder import open_folder_dataset
from maskdepth.errors import DatasetError, InputError, MaskDepthError
from maskdepth.training.isolated import train_in_child
from maskdepth.training.loop import TrainConfig, TrainResult, train
from maskdepth.training.runs import write_run_card
from maskdepth.ui.context import AppContext
from maskdepth.ui.errors import user_message
from maskdepth.ui.jobs import TRAINING, Job, cli_command
from maskdepth.ui.live import RENDER_EVERY_S, LiveRun

DATASET_KINDS = ("synthetic", "zip upload", "your photos", "folder path")
CURVES_EVERY_S = 2.0  # the chart is re-sent at most this often (and at each end), the rest every 0.5 s
CURVES_HEIGHT = 300


# The loop runs in a child process of its own (maskdepth.training.isolated): in a thread of the server it
# shared the GIL with the live view and made 0.65-0.84x the CLI's steps (bench/app_train.py,
# BENCHMARKS.md "The Train tab's default run"). MASKDEPTH_TRAIN_IN_CHILD=0 trains in a thread instead
# (one process: a debugger, or a host that cannot start processes).
def train_in_child_enabled() -> bool:
    return os.environ.get("MASKDEPTH_TRAIN_IN_CHILD", "1") != "0"


def start_training(ctx: AppContext, owner: str, cfg: TrainConfig, dataset: Callable[[], str]) -> Job:
    """Take the training slot (InputError if it is taken) and start ``cfg`` in a job owned by ``owner``.

    ``dataset()`` runs in the job's thread and gives ``cfg.dataset`` (e.g. an uploaded zip, extracted).
    """
    stop = TRAINING.acquire("training", owner)
    view = LiveRun("training")
    view.message = "preparing the dataset..."
    job = Job("training", owner, view, stop)
    prepared: dict[str, Any] = {"dataset": None}

    def target(emit: Callable[[Any], None]) -> TrainResult:
        try:
            prepared["dataset"] = dataset()
            if ctx.on_space:
                ctx.visitors.save_secret()  # the run's folder is named with it: keep it with the runs
            run_cfg = dataclasses.replace(cfg, dataset=prepared["dataset"])
            job.change(lambda v: setattr(v, "message", "starting the training..."))
            result = (train_in_child if train_in_child_enabled() else train)(run_cfg, emit, stop)
            write_run_card(result.run_dir, command=cli_command(run_cfg))
            return result
        except Exception as err:
            message = user_message(err)  # logged once here, shown to every watcher
            job.change(lambda v: setattr(v, "failure", message))
            raise

    try:
        TRAINING.attach(stop, job)
        return job.start(target, on_exit=lambda: finished(ctx, stop, prepared["dataset"]))
    except BaseException:
        TRAINING.release(stop)
        raise


def dataset_source(
    ctx: AppContext, kind: str, zip_file: str | None, folder: str | None, photos: dict | None = None
) -> str:
    """``TrainConfig.dataset`` for the UI's choice; extracts an uploaded zip into its own folder; for
    "your photos" makes the dataset from ``photos`` (:func:`maskdepth.ui.photos.make_from_uploads`'s
    arguments)."""
    if kind == "synthetic":
        return "synthetic"
    if kind == "your photos":
        from maskdepth.ui.photos import make_from_uploads

        return str(make_from_uploads(ctx, **(photos or {})))
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


def finished(ctx: AppContext, stop: threading.Event, dataset: str | None) -> None:
    """A run ended (or never started): free the training slot; on a Space, delete the extracted upload.

    Locally an extracted zip is kept, so the command in the run's model card can reproduce it.
    """
    TRAINING.release(stop)
    uploads = (ctx.data_dir / "uploads").resolve()
    if ctx.on_space and dataset and Path(dataset).resolve().is_relative_to(uploads):
        shutil.rmtree(uploads / Path(dataset).resolve().relative_to(uploads).parts[0], ignore_errors=True)


def stream(ctx: AppContext, job: Job, *, started_here: bool) -> Iterator[tuple[Any, ...]]:
    """Yield (progress html, status markdown, curves, samples, run zip) while ``job`` runs, then its end.

    ``started_here``: the stream of the ``/train`` call that started the job; it raises the job's
    error at the end (the caller sees it as an error) and says how the run ended in a toast.
    Other streams (page loads) show a failure in the status instead.
    """
    last_curves, sent_samples = -CURVES_EVERY_S, object()
    for ended in job.watch(RENDER_EVERY_S):
        with job.lock:
            view: LiveRun = job.view
            html, status = view.progress_html(), view.status_md()
            curves: Any = gr.skip()
            if ended or time.monotonic() - last_curves >= CURVES_EVERY_S:
                curves, last_curves = view.curves(CURVES_HEIGHT), time.monotonic()
            samples = gr.skip() if view.samples is sent_samples else view.samples
            sent_samples = view.samples
        download = run_zip(ctx, job) if ended else None
        yield html, status, curves, samples, download
    if not started_here:
        return
    if job.error is not None:
        raise job.error
    done = job.view.done
    if done is not None and done.reason == "nan":
        gr.Warning(done.message)
    else:
        gr.Info(job.view.result_line() or (done.message if done else "done"))


def reattach(ctx: AppContext, owner: str) -> Iterator[tuple[Any, ...]]:
    """On a page load: stream the owner's running job, or show their last finished one, else nothing."""
    job = TRAINING.latest(owner)
    if job is None:
        yield (gr.skip(),) * 5
        return
    yield from stream(ctx, job, started_here=False)


def run_zip(ctx: AppContext, job: Job) -> str | None:
    """The finished run's folder as a zip (made once, again if its temp copy was cleaned up), or None."""
    done = job.view.done
    if done is None or job.error is not None or not Path(done.run_dir).is_dir():
        return None
    with job.lock:
        if job.zip_path is None or not Path(job.zip_path).is_file():
            job.zip_path = str(zip_folder(Path(done.run_dir), ctx.outputs.new("run")))
        return job.zip_path


def zip_folder(folder: Path, dest_dir: Path) -> Path:
    """``folder`` (its files, under its own name) as ``dest_dir/<name>.zip``; stored, not compressed:
    weights barely compress."""
    dest = dest_dir / f"{folder.name}.zip"
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file() and not f.is_symlink():
                zf.write(f, Path(folder.name) / f.relative_to(folder))
    return dest

"""Train tab: pick data, losses and a budget; watch progress, loss curves and sample predictions live.

The controls are built from :func:`maskdepth.training.config.settings` (every setting with ``ui=True``): a
setting's label, help, range and choices are stated once, in the config, for the CLI and this tab.
Four settings have controls of their own here: the dataset (synthetic, a zip upload or a folder),
the budget (one number in minutes, epochs or steps), resume (a run from the list) and the run
folder (a name under the runs folder).

A training is a server-side job (:mod:`maskdepth.ui.train_run`): Start begins it and watches it;
a page load (a reload, a second tab) of the same owner watches it again from where it is, and
Stop works from there too. One training at a time per process (``TRAINING``); on a Space each
visitor sees only their own runs and the budget is capped (:data:`SPACE_MAX_MINUTES`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import gradio as gr

from maskdepth.errors import InputError
from maskdepth.naming import slug
from maskdepth.training.loop import TrainConfig
from maskdepth.training.recipes import load_recipe, recipe_path
from maskdepth.training.runs import is_model_dir
from maskdepth.training.settings import Setting, setting, settings
from maskdepth.ui import photos, train_run
from maskdepth.ui.config_form import control, from_control, named_handler
from maskdepth.ui.context import DEFAULT_CHOICE, AppContext, register_picker
from maskdepth.ui.errors import gradio_errors
from maskdepth.ui.jobs import TRAIN_CONCURRENCY, TRAINING
from maskdepth.ui.live import LiveRun, curves_plot
from maskdepth.ui.train_run import DATASET_KINDS, dataset_source

BUDGET_KINDS = tuple(s.name for s in settings() if s.group == "budget")  # epochs, steps, minutes
NO_RESUME = "(start from scratch)"
FINE_TUNE = "(start from the shipped model: fine-tune it, the learning rate restarted)"
SPACE_MAX_MINUTES = 10  # on a Space: a training ends after this many minutes whatever its budget
# Settings with a control of their own in this tab (see the module docstring); the run folder's is a name.
OWN_CONTROLS = {"dataset", *BUDGET_KINDS, "resume", "out_dir"}
SYNTHETIC = ("backgrounds", "foregrounds", "positions")  # shown for the synthetic dataset only
SCENES_TEXT = {  # --scene-families in the words of the tab's summary
    "all": "rooms, corridors, wall scenes, shelving racks, outdoor and tabletop",
    "indoor": "rooms, corridors, wall scenes and shelving racks",
    "outdoor": "open ground under a sky",
    "rooms": "rooms only",
    "heldout": "street scenes",
}
# Where each settings group's controls go: None = in the main column, else the accordion's title.
PLACES = {
    "data": None,
    "losses": None,
    "optimisation": "Optimisation",
    "model": "Model, resume and evaluation",
    "run folder": "Model, resume and evaluation",
    "evaluation and run": "Model, resume and evaluation",
}
# The tab's starting values: a recipe file (recipes/browser.toml says why and where it is measured), as
# the shipped recipe trains for 80 minutes on 400,000 samples and a first run here should take two.
TAB_RECIPE = recipe_path("browser")
APP_CHOICES: dict[str, list[Any]] = {"base_width": [4, 8, 16, 32]}
WATCH_API = (
    "Watch your training (locally: the app's): streams the same outputs as /train from where the run is "
    "until it ends; for a finished run, its summary once; nothing if you have none. Every page load does "
    "this, so a reload or a second tab shows the run still going."
)
TRAIN_API = (
    "Train a W-Net, streaming (progress html, status markdown, curves: a Vega-Lite chart of the losses and "
    "the learning rate, sample predictions, the finished run as a zip) until the budget is spent. The run "
    "is a server-side job: cancelling this call does not stop it (/stop_training does), and a page load "
    "shows it again. One training at a time per app: a second one is refused at once. The run folder "
    "then appears in the model pickers, so /predict can use it by name. resume: a run, "
    f"{NO_RESUME!r} or {FINE_TUNE!r}."
)


@cache
def tab_defaults() -> dict[str, Any]:
    """The tab's starting value of every setting: :data:`TAB_RECIPE` over TrainConfig's defaults."""
    recipe = load_recipe(TAB_RECIPE)
    budget = next(name for name in BUDGET_KINDS if name in recipe)  # the recipe's one budget
    return {**TrainConfig(**{budget: recipe[budget]}).to_dict(), **recipe, "budget_kind": budget}


def form_settings() -> list[Setting]:
    """The settings this tab shows as generic controls (``ui=True``, minus :data:`OWN_CONTROLS`)."""
    return [s for s in settings() if s.ui and s.name not in OWN_CONTROLS]


# ---- configuration ------------------------------------------------------------------------------------


def resume_choices(ctx: AppContext, visitor: str | None = None) -> list[Any]:
    """From scratch, the shipped model (if installed), then the (visitor's) runs."""
    shipped = [FINE_TUNE] if is_model_dir(ctx.checkpoints_dir) else []
    return [NO_RESUME, *shipped, *ctx.run_choices(visitor)]


def build_config(
    ctx: AppContext,
    *,
    dataset: str,
    budget_kind: str,
    budget: float,
    resume: str | None,
    run_name: str | None,
    runs_dir: Path | None = None,
    **values: Any,
) -> TrainConfig:
    """A TrainConfig from the tab's controls (``values``: :func:`form_settings` by name); the run folder is
    new under ``runs_dir`` (default: the runs folder). :data:`FINE_TUNE` resumes the shipped model with
    the learning rate restarted; on a Space the run stops after :data:`SPACE_MAX_MINUTES` at most."""
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
    if resume == FINE_TUNE:
        resume_path, fields["resume_lr"] = ctx.resolve_source(DEFAULT_CHOICE), "restart"
    elif resume and resume != NO_RESUME:
        resume_path = ctx.resolve_source(resume)
    if ctx.on_space:
        fields["minutes"] = min(fields.get("minutes") or SPACE_MAX_MINUTES, SPACE_MAX_MINUTES)
    losses = f"{fields['mask_loss']}-{fields['depth_loss']}"
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{slug(run_name or losses)}"
    out_dir = (runs_dir or ctx.runs_dir) / name
    return TrainConfig(dataset=dataset, resume=resume_path, out_dir=str(out_dir), **fields)


# ---- the handler ------------------------------------------------------------------------------------


def train_stream(
    ctx: AppContext,
    owner: str,
    *,
    dataset_kind: str,
    zip_file: str | None,
    folder: str | None,
    photo_backgrounds: str | None = None,
    photo_objects: str | None = None,
    photo_depth: str = photos.SHIPPED,
    photo_positions: float = photos.DEFAULT_POSITIONS,
    **controls: Any,
) -> Iterator[tuple[Any, ...]]:
    """Start a training job owned by ``owner`` and yield (progress html, status markdown, curves,
    samples, run zip) while it trains (see :func:`maskdepth.ui.train_run.stream`).

    Refuses at once if another training holds the slot. Stop ends the run at its next step; the
    best checkpoint so far is kept and the run's model card is written either way. Leaving (closing
    the tab, cancelling the API call) does not stop it: a page load of the same owner shows it again.
    """
    runs_dir = ctx.visitor_runs_dir(owner if ctx.on_space else None)
    cfg = build_config(ctx, dataset="synthetic", runs_dir=runs_dir, **controls)  # the dataset comes next
    if dataset_kind not in DATASET_KINDS:
        dataset_source(ctx, dataset_kind, zip_file, folder)  # says which kinds there are
    made = {  # "your photos": the zips and choices the dataset is made from (in the job, before training)
        "backgrounds_zip": photo_backgrounds,
        "objects_zip": photo_objects,
        "depth": photo_depth,
        "positions": int(photo_positions),
    }
    job = train_run.start_training(
        ctx, owner, cfg, lambda: dataset_source(ctx, dataset_kind, zip_file, folder, made)
    )
    yield from train_run.stream(ctx, job, started_here=True)


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
    config's order; one row per settings group."""
    defaults = tab_defaults()
    shown = [s for s in settings() if s.ui and PLACES.get(s.group, "") == place and s.name not in skip]
    out: dict[str, Any] = {}
    for group in dict.fromkeys(s.group for s in shown):
        with gr.Row():
            for s in (s for s in shown if s.group == group):
                if s.name not in OWN_CONTROLS:
                    out[s.name] = control(s, defaults[s.name], choices=APP_CHOICES.get(s.name))
    return out


def _data_controls(ctx: AppContext) -> tuple[dict[str, Any], list[Any]]:
    """Dataset choice, synthetic sizes, zip and folder: (controls by parameter name, the boxes to toggle)."""
    kinds = [k for k in DATASET_KINDS if not (ctx.on_space and k == "folder path")]
    controls: dict[str, Any] = {
        "dataset_kind": gr.Radio(kinds, value="synthetic", label=setting("dataset").label)
    }
    with gr.Group(visible=True) as synthetic_box:
        sizes = {name: control(setting(name), tab_defaults()[name]) for name in SYNTHETIC}
        samples_md = gr.Markdown(_samples_text(*(tab_defaults()[name] for name in SYNTHETIC)))
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
    photo_controls, photo_box = photos.build(ctx)
    controls.update(photo_controls)
    return controls, [synthetic_box, controls["zip_file"], photo_box, controls["folder"]]


def _controls(ctx: AppContext) -> dict[str, Any]:
    """Every input of the Start button, by the name the handler (and the API) gives it."""
    controls, boxes = _data_controls(ctx)
    controls.update(_settings_controls(ctx, None, skip=SYNTHETIC))
    with gr.Row():
        kind = tab_defaults()["budget_kind"]
        controls["budget_kind"] = gr.Radio(list(BUDGET_KINDS), value=kind, label="Budget in")
        controls["budget"] = gr.Number(value=tab_defaults()[kind], minimum=0, label="Budget")
    picker = gr.Dropdown(
        resume_choices(ctx),
        value=NO_RESUME,
        label="Start from",
        info="a new W-Net, the shipped model (its weights and size; the learning rate restarts) or a run",
    )
    controls["resume"] = register_picker(ctx, picker, lambda visitor: resume_choices(ctx, visitor))
    for title in dict.fromkeys(t for t in PLACES.values() if t):
        with gr.Accordion(title, open=False):
            controls.update(_settings_controls(ctx, title))
    controls["run_name"] = gr.Textbox(label="Run name (optional)", placeholder="e.g. bce-ssim-try1")

    def on_kind(kind: str) -> tuple[Any, ...]:
        return tuple(
            gr.update(visible=kind == k) for k in ("synthetic", "zip upload", photos.KIND, "folder path")
        )

    controls["dataset_kind"].change(
        on_kind, controls["dataset_kind"], boxes, api_visibility="private", queue=False
    )
    return controls


def _outputs() -> list[Any]:
    """Progress, status, curves, sample predictions, the run as a zip (what ``train_stream`` yields)."""
    progress = gr.HTML(LiveRun().progress_html(idle=True), label="Progress", elem_id="md-train-progress")
    status = gr.Markdown(label="Status", elem_id="md-train-status")
    curves = gr.Plot(
        curves_plot({name: [] for name in LiveRun().train_points | LiveRun().test_points}, []),
        label="Losses (train per step, test per evaluation) and the learning rate",
        elem_id="md-train-curves",
    )
    samples = gr.Image(
        label="Sample predictions (test samples), left to right: input | mask target | "
        "mask predicted | depth target | depth predicted",
        format="png",
        interactive=False,
    )
    download = gr.File(label="The finished run (zip: weights, metrics, model card)", interactive=False)
    return [progress, status, curves, samples, download]


def defaults_text(ctx: AppContext) -> str:
    """One paragraph: what the tab's defaults are and why, from :func:`tab_defaults` (and the caps)."""
    defaults = tab_defaults()

    def v(name: str) -> Any:
        return defaults[name]

    n = int(v("backgrounds")) * int(v("foregrounds")) * int(v("positions")) * 2
    budget = f"{v(v('budget_kind')):g} {v('budget_kind')}"
    every = f"every {v('eval_every')} steps" if v("eval_every") else "once per epoch"
    previews = (
        f"previews every {v('sample_every')} steps" if v("sample_every") else "no previews until the end"
    )
    text = (
        f"**The defaults** train a new W-Net of width {v('base_width')} for {budget} on {n:,} synthetic "
        f"{v('size')} px scenes ({SCENES_TEXT[v('scene_families')]}, "
        f"{'bg and composite as two shots' if v('two_shot') else 'exact pastes'}; "
        f"batch {v('batch_size')}, {v('optimizer')} at lr {v('lr'):g}, "
        f"{v('scheduler')} schedule; {v('mask_loss')} mask loss, {v('depth_loss')} depth loss), scoring "
        f"{v('eval_samples')} held-out samples {every}, with {previews}. Why: a first run should end in "
        f"{budget} on a CPU with a mask that is already usable (the aim: held-out mask IoU 0.90 or more). "
        "In a short budget many small steps beat a few big ones: on a 2-core CPU this setting made 400-700 "
        "steps in 2 minutes and reached IoU 0.93-0.95, where the seed's width 32 with batch 32 made about "
        "100 steps and reached 0.79. The scenes are rooms with exact pastes: the harder mix of scenes as two "
        "separate shots (what a model for real photo pairs needs) reached IoU 0.80 in the same 2 minutes. "
        "Evaluation and previews are kept to about a tenth of the time (the progress line shows their share). "
        "For a better model, raise the budget or start from the shipped model."
    )
    if ctx.on_space:
        kept = (
            f"runs are kept in `{ctx.runs_dir}` (`MASKDEPTH_RUNS`)"
            if os.environ.get("MASKDEPTH_RUNS")
            else "runs are temporary: they are lost when the Space restarts"
        )
        text += (
            f"\n\n**On this Space** {kept}; download a finished run as a zip below, or push it to the Hub "
            "in the Models tab. You see only your own runs (and the shipped model). One training at a time "
            f"for all visitors, no waiting line (others are told at once); each ends after {SPACE_MAX_MINUTES} "
            "minutes at most."
        )
    return text


def build(ctx: AppContext) -> TrainTab:
    """Lay out the tab and wire its events (call inside a ``gr.Tab``)."""
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            gr.Markdown(defaults_text(ctx), elem_id="md-train-defaults")
            controls = _controls(ctx)
            with gr.Row():
                start = gr.Button("Start training", variant="primary", elem_id="md-train-start")
                stop = gr.Button("Stop", variant="stop", elem_id="md-train-stop")
        with gr.Column(scale=3):
            outputs = _outputs()

    def on_train(request: gr.Request | None = None, **values: Any) -> Iterator[tuple[Any, ...]]:
        """Train a W-Net with these settings (see the /train API description)."""
        yield from train_stream(ctx, ctx.visitor(request), **values)

    @gradio_errors
    def on_stop(request: gr.Request) -> None:
        stop_training(ctx.visitor(request))

    def on_load(request: gr.Request) -> Iterator[tuple[Any, ...]]:
        yield from train_run.reattach(ctx, ctx.visitor(request))

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
    ctx.on_page_stream(
        on_load,
        outputs,
        api_name="watch_training",
        api_description=WATCH_API,
        api_visibility="public",
    )
    # Not queued behind the training: a stop must get through while the run holds the train queue.
    stop.click(
        on_stop,
        None,
        None,
        api_name="stop_training",
        api_description="Stop the training you started (locally: the running one), at its next step; the "
        "best checkpoint so far is kept. Works from any page or client of the same owner; on a Space a "
        "training started by another visitor is left running.",
        concurrency_id="stop",
        concurrency_limit=None,
    )
    return TrainTab(start=start, stop=stop, outputs=outputs)


def _samples_text(backgrounds: float, foregrounds: float, positions: float) -> str:
    n = int(backgrounds) * int(foregrounds) * int(positions) * 2
    return f"{n:,} samples (each placement also flipped); 70% train, 30% test"

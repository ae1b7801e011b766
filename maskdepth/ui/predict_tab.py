"""Predict tab: a background + composite in, the mask and the depth map out (single or batch).

Handlers are module-level functions of the app context so tests call them directly.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from maskdepth.errors import InputError, MaskDepthError
from maskdepth.imageio import save_png_rgb
from maskdepth.predict import (
    OUTPUT_FILES,
    Prediction,
    Predictor,
    colorize_depth,
    mask_overlay,
    save_prediction,
)
from maskdepth.ui.common import (
    DEFAULT_CHOICE,
    PREDICT_CONCURRENCY,
    AppContext,
    gradio_errors,
    image_upload,
    register_picker,
)

MAX_BATCH_FILES = 100  # per request; the zip of a larger batch is better made with the CLI
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
DOWNLOADS = ("mask.png", "depth.png", "depth16.png")


@dataclass
class PredictTab:
    """The components other tabs and tests need."""

    model: gr.Dropdown
    background: gr.Image
    composite: gr.Image
    outputs: list[Any]


# ---- handlers -------------------------------------------------------------------------------------


def get_predictor(ctx: AppContext, model: str | None) -> Predictor:
    """The (cached) Predictor for the picker's value; a Space never lends its own token for a user's repo."""
    source = ctx.resolve_source(model)
    return ctx.predictors.get(source, token=False if ctx.on_space else None)


def _show_notes(pred: Prediction, name: str = "") -> None:
    for note in pred.notes:
        gr.Warning(f"{name}: {note}" if name else note)


def predict(
    background: str | None, composite: str | None, model: str | None = DEFAULT_CHOICE, *, ctx: AppContext
) -> tuple[Any, ...]:
    """One pair -> (overlay, depth colour, slider pair, mask.png, depth.png, depth16.png).

    Every output has the composite's size.
    """
    if not composite:
        raise InputError("upload the composite image (fg_bg): the photo with the object pasted in")
    predictor = get_predictor(ctx, model)
    pred = predictor.predict(composite, background or None)
    _show_notes(pred)
    out = ctx.outputs.new("predict")
    files = save_prediction(pred, out)
    overlay = save_png_rgb(mask_overlay(pred.image, pred.mask), out / "overlay.png")
    before = save_png_rgb(pred.image, out / "composite.png")  # EXIF-rotated RGB, same size as the maps
    color = str(files["depth_color.png"])
    return (str(overlay), color, (str(before), color), *(str(files[name]) for name in DOWNLOADS))


def _stem_map(paths: Sequence[str]) -> dict[str, str]:
    return {Path(p).stem: p for p in paths}


def predict_batch(
    composites: Sequence[str] | None,
    backgrounds: Sequence[str] | None,
    model: str | None = DEFAULT_CHOICE,
    *,
    ctx: AppContext,
    progress: gr.Progress | None = None,
) -> tuple[str, str]:
    """Many composites -> a zip with one folder per composite (the four files of ``OUTPUT_FILES``).

    Backgrounds: none (3-channel models), one for every composite, or one per composite with the
    same file name (``room1.jpg`` for ``room1.png`` is fine: names are matched without suffix).
    """
    composites = [str(p) for p in composites or []]
    backgrounds = [str(p) for p in backgrounds or []]
    if not composites:
        raise InputError("upload one or more composite images (fg_bg) for the batch")
    if len(composites) > MAX_BATCH_FILES:
        raise InputError(
            f"{len(composites)} composites is more than {MAX_BATCH_FILES} per batch here: split them, or use "
            "`python -m maskdepth predict --image FOLDER --bg FOLDER --out OUT` for a whole folder"
        )
    by_name = _stem_map(backgrounds)
    if len(backgrounds) > 1:
        missing = [Path(c).name for c in composites if Path(c).stem not in by_name]
        if missing:
            raise InputError(
                f"no background named like {', '.join(missing[:5])}: give one background for all composites, "
                "or one per composite with the same file name (suffix may differ)"
            )
    predictor = get_predictor(ctx, model)
    if predictor.needs_background and not backgrounds:
        raise InputError(
            "this model needs backgrounds too: upload one for all composites, or one per composite "
            "with the same file name (or pick a 3-channel model)"
        )
    out = ctx.outputs.new("batch")
    results, skipped, used = [], [], set()
    for i, comp in enumerate(composites):
        if progress is not None:
            progress((i, len(composites)), desc="predicting", unit="images")
        name = Path(comp).stem
        folder = name if name not in used else f"{name}-{i + 1}"
        used.add(folder)
        bg = by_name.get(name) if len(backgrounds) > 1 else (backgrounds[0] if backgrounds else None)
        try:
            pred = predictor.predict(comp, bg)
        except MaskDepthError as err:
            skipped.append(f"{Path(comp).name}: {err}")
            continue
        _show_notes(pred, Path(comp).name)
        save_prediction(pred, out / "results" / folder)
        results.append(folder)
    if not results:
        raise InputError("no composite could be read: " + "; ".join(skipped[:3]))
    zip_path = out / "maskdepth-batch.zip"
    readme = "One folder per composite, each holding:\n" + "".join(
        f"  {k}: {v}\n" for k, v in OUTPUT_FILES.items()
    )
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("README.txt", readme)
        for folder in results:
            for name in OUTPUT_FILES:
                zf.write(out / "results" / folder / name, f"{folder}/{name}")
    summary = f"Predicted {len(results)} of {len(composites)} composites."
    if skipped:
        summary += "\n\nSkipped:\n" + "\n".join(f"- {s}" for s in skipped)
        gr.Warning(f"{len(skipped)} file(s) could not be read; see the summary under the zip")
    return str(zip_path), summary


def model_info(model: str | None, *, ctx: AppContext) -> tuple[str, Any]:
    """Describe the picked model and relabel the background input (optional for 3-channel models).

    Shown inline rather than as a pop-up: picking a model is not an action that should fail loudly.
    """
    try:
        predictor = get_predictor(ctx, model)
    except MaskDepthError as err:
        return f"⚠️ {err}", gr.update(label="Background (bg)")
    m = predictor.model
    if predictor.needs_background:
        text = f"6-channel W-Net (background + composite), trained at {m.image_size}x{m.image_size}."
        label = "Background (bg)"
    else:
        size = f"{m.image_size}x{m.image_size}"
        text = f"3-channel W-Net (composite only), trained at {size}: the background is not used."
        label = "Background (bg): optional, not used by this model"
    return text, gr.update(label=label)


# ---- layout ------------------------------------------------------------------------------------------


def example_pairs(folder: Path) -> tuple[list[list[str]], list[str]]:
    """([bg, fg_bg] pairs, labels) from ``<name>_bg.*`` / ``<name>_fg_bg.*`` files; synthetic first."""
    pairs, labels = [], []
    if not folder.is_dir():
        return pairs, labels
    files = {p.name: p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
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


def depth_legend_html() -> str:
    """A turbo gradient bar from far (left) to near (right), using the same colour map as the outputs."""
    stops = colorize_depth(np.linspace(0, 1, 11, dtype=np.float32)[None, :])[0]
    gradient = ", ".join(f"rgb({r},{g},{b}) {i * 10}%" for i, (r, g, b) in enumerate(stops))
    return (
        '<div style="max-width:520px;margin:4px 0 8px 0;font-size:0.9em">'
        f'<div style="height:14px;border-radius:4px;background:linear-gradient(to right, {gradient})"></div>'
        '<div style="display:flex;justify-content:space-between">'
        "<span>far (0, blue)</span><span>depth colour map</span><span>near (1, red)</span></div>"
        "<div style='opacity:0.8'>Depth is inverse distance (near = 1, far = 0), relative to the scene; "
        "depth16.png stores it x 65535.</div></div>"
    )


def build(ctx: AppContext) -> PredictTab:
    """Lay out the tab and wire its events (call inside a ``gr.Tab``)."""
    gr.Markdown(
        "Upload a **background** photo and the **same photo with an object pasted in** (the composite); the "
        "model finds the object (mask) and estimates how far everything is (depth). Outputs have the "
        "composite's size."
    )
    with gr.Row():
        model = gr.Dropdown(
            choices=ctx.model_choices(),
            value=DEFAULT_CHOICE,
            allow_custom_value=True,
            label="Model",
            info="the shipped model, a trained run, or type a Hub repo id (owner/name)",
            scale=5,
        )
        refresh = gr.Button("↻ Refresh list", scale=1, size="sm")
    register_picker(ctx, model)
    # Called on every page load: says which model is picked, or why the default one is missing.
    info = gr.Markdown(lambda: model_info(DEFAULT_CHOICE, ctx=ctx)[0])
    with gr.Row():
        background = image_upload(label="Background (bg)", sources=["upload", "clipboard"])
        composite = image_upload(label="Composite (fg_bg)", sources=["upload", "clipboard"])
    pairs, labels = example_pairs(ctx.examples_dir)
    if pairs:
        gr.Examples(
            examples=pairs,
            inputs=[background, composite],
            example_labels=labels,
            label="Examples (click one)",
            examples_per_page=12,
        )
    run = gr.Button("Predict", variant="primary", elem_id="md-predict")
    with gr.Row():
        overlay = gr.Image(
            label="Mask over the composite",
            format="png",
            interactive=False,
            buttons=["download", "fullscreen"],
            elem_id="md-overlay",
        )
        depth = gr.Image(
            label="Depth (turbo colour map)",
            format="png",
            interactive=False,
            buttons=["download", "fullscreen"],
            elem_id="md-depth",
        )
    gr.HTML(depth_legend_html())
    slider = gr.ImageSlider(label="Before / after: composite | depth", format="png", interactive=False)
    with gr.Row():
        files = [gr.File(label=f"{name}: {OUTPUT_FILES[name]}", interactive=False) for name in DOWNLOADS]
    outputs = [overlay, depth, slider, *files]

    with gr.Accordion("Batch: many composites at once → a zip", open=False):
        gr.Markdown(
            "Backgrounds: none (3-channel models), **one** for all composites, or **one per composite with "
            "the "
            "same file name**. The zip holds one folder per composite with "
            + ", ".join(f"`{k}` ({v})" for k, v in OUTPUT_FILES.items())
            + "."
        )
        with gr.Row():
            batch_fg = gr.File(file_count="multiple", file_types=["image"], label="Composites (fg_bg)")
            batch_bg = gr.File(file_count="multiple", file_types=["image"], label="Backgrounds (bg)")
        batch_run = gr.Button("Predict batch", variant="primary")
        batch_zip = gr.File(label="Results (zip)", interactive=False)
        batch_summary = gr.Markdown(label="Batch summary")

    @gradio_errors
    def on_predict(background: str | None, composite: str | None, model: str | None) -> tuple[Any, ...]:
        return predict(background, composite, model, ctx=ctx)

    @gradio_errors
    def on_batch(
        composites: list[str] | None,
        backgrounds: list[str] | None,
        model: str | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's idiom: it injects the tracker
    ) -> tuple[str, str]:
        return predict_batch(composites, backgrounds, model, ctx=ctx, progress=progress)

    def on_model(model: str | None) -> tuple[str, Any]:
        return model_info(model, ctx=ctx)

    queue = {"concurrency_id": "predict", "concurrency_limit": PREDICT_CONCURRENCY}
    run.click(on_predict, [background, composite, model], outputs, api_name="predict", **queue)
    batch_run.click(
        on_batch, [batch_fg, batch_bg, model], [batch_zip, batch_summary], api_name="predict_batch", **queue
    )
    model.change(on_model, model, [info, background], api_visibility="private", **queue)
    ctx.model_events.append(refresh.click(lambda: None, None, None, api_visibility="private", queue=False))
    return PredictTab(model=model, background=background, composite=composite, outputs=outputs)

"""Inference latency: one (bg, fg_bg) pair end to end, the model alone, and the app's endpoint.

End to end = decode two PNG files from disk, pre-process, model, post-process
(``Predictor.predict``), then encode the four output PNGs (``save_prediction``). The probes
take turns in every iteration (order rotated), so they see the same machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bench.app_bench import (
    AppUnavailable,
    GradioFloor,
    connect,
    endpoint_kwargs,
    no_download_call,
    open_app_for_latency,
    predict_once,
)
from bench.common import ROOT, Row, SectionResult, Stats
from maskdepth import WNet, load_model
from maskdepth.imageio import save_png_rgb
from maskdepth.predict.outputs import save_prediction
from maskdepth.predict.predictor import Predictor
from maskdepth.predict.refine import pad_to_multiple

E2E_TARGET_X = 2.0  # end-to-end 224 predict <= 2x the model alone
APP_TARGET_MS = 100.0  # the app adds <= 100 ms on top of end to end
FLOOR = "gradio floor (echo endpoint)"
NO_DOWNLOAD = "app /predict 224x224, outputs not downloaded"


def load_bench_model(source: str | None) -> tuple[WNet, str]:
    """The model to time: ``source``, else the shipped checkpoints/ folder, else a fresh W-Net.

    Latency does not depend on the weights' values, only on the architecture.
    """

    if source:
        return load_model(source), source
    shipped = ROOT / "checkpoints"
    if (shipped / "config.json").is_file():
        return load_model(str(shipped)), str(shipped)
    return (
        WNet().eval(),
        "a freshly initialised W-Net (no checkpoints/ yet; latency does not depend on weight values)",
    )


def make_inputs(folder: Path) -> dict[str, tuple[Path, Path]]:
    """PNG pairs on disk: a 224x224 synthetic scene and a 1024x768 photo with an object pasted in."""
    from skimage import data as skdata

    from maskdepth.data.synthetic import SyntheticScenes

    sample = SyntheticScenes(backgrounds=1, foregrounds=1, positions=1, flips=False, size=224, seed=0)[0]

    def u8(t: torch.Tensor) -> np.ndarray:
        return (t.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()

    pairs: dict[str, tuple[Path, Path]] = {}
    bg224, fg224 = folder / "bg224.png", folder / "fg_bg224.png"
    save_png_rgb(u8(sample["bg"]), bg224)
    save_png_rgb(u8(sample["fg_bg"]), fg224)
    pairs["224x224"] = (bg224, fg224)

    photo = Image.fromarray(skdata.coffee()).resize((1024, 768), Image.BICUBIC)
    obj = Image.fromarray(u8(sample["fg_bg"])).resize((384, 384), Image.BICUBIC)
    alpha = Image.fromarray((sample["mask"][0].numpy() * 255).astype(np.uint8)).resize(
        (384, 384), Image.NEAREST
    )
    composite = photo.copy()
    composite.paste(obj, (320, 300), alpha)
    bg_big, fg_big = folder / "bg1024x768.png", folder / "fg_bg1024x768.png"
    save_png_rgb(photo, bg_big)
    save_png_rgb(composite, fg_big)
    pairs["1024x768"] = (bg_big, fg_big)
    return pairs


def run_inference(
    *, repeats: int, model_source: str | None, app_path: Path | None, work: Path, app_timeout_s: float = 120.0
) -> SectionResult:
    """Section 3: end-to-end latency at 224 and 1024x768, the model alone at 224's working size, the app."""
    res = SectionResult()
    model, model_desc = load_bench_model(model_source)
    predictor = Predictor(model)
    pairs = make_inputs(work)
    out_dir = work / "out"
    # "The model alone": one full forward at the working size a 224x224 photo is predicted at (padded).
    w, h = predictor.working_size(224, 224)
    x, _ = pad_to_multiple(torch.randn(1, model.in_channels, h, w))
    size = f"{x.shape[-1]}x{x.shape[-2]}"

    parts: dict[str, dict[str, list[float]]] = {}

    def e2e(label: str) -> Callable[[], None]:
        bg, fg = pairs[label]
        parts[label] = {"predict": [], "save": []}

        def call() -> None:
            t = time.perf_counter()
            pred = predictor.predict(fg, bg)
            t1 = time.perf_counter()
            save_prediction(pred, out_dir)
            parts[label]["predict"].append(t1 - t)
            parts[label]["save"].append(time.perf_counter() - t1)

        return call

    @torch.inference_mode()
    def model_alone() -> None:
        model(x)

    probes: dict[str, Callable[[], Any]] = {
        "e2e 224x224": e2e("224x224"),
        "e2e 1024x768": e2e("1024x768"),
        f"model alone {size}": model_alone,
    }
    close: Callable[[], None] | None = None
    app_note = ""
    # The app gets the same weights in its checkpoints folder, and scratch folders for the rest.
    app_model = work / "app-checkpoint"
    model.save_pretrained(app_model)
    folders = {"checkpoints_dir": app_model, "runs_dir": work / "app-runs", "data_dir": work / "app-data"}
    try:
        app_client, app_call, close, app_note = open_app_for_latency(
            app_path, predictor, pairs["224x224"][1], pairs["224x224"][0], work, app_timeout_s, folders
        )
        probes["app /predict 224x224 (gradio_client)"] = app_call
        probes[NO_DOWNLOAD] = no_download_call(app_client, pairs["224x224"])
    except AppUnavailable as e:
        app_note = f"skipped: {e}"
        res.notes.append(f"app latency {app_note}")
    floor: GradioFloor | None = None
    if close is not None:
        floor = GradioFloor()
        floor_client = connect(floor.url)
        floor_kwargs, _ = endpoint_kwargs(
            floor_client.view_api(print_info=False, return_format="dict"),
            pairs["224x224"][1],
            pairs["224x224"][0],
        )
        probes[FLOOR] = lambda: predict_once(floor_client, floor_kwargs)

    try:
        for call in probes.values():  # warm-up: first-call allocations, thread pools, server caches
            call()
        for p in parts.values():
            p["predict"].clear()
            p["save"].clear()
        times: dict[str, list[float]] = {name: [] for name in probes}
        names = list(probes)
        for i in range(repeats):
            k = i % len(names)
            for name in names[k:] + names[:k]:
                t = time.perf_counter()
                probes[name]()
                times[name].append(time.perf_counter() - t)
    finally:
        if close is not None:
            close()
        if floor is not None:
            floor.close()

    sec = "3 inference"
    ms = {name: Stats.of(v * 1e3 for v in vals) for name, vals in times.items()}
    alone = ms[f"model alone {size}"]
    ratios = Stats.of(a / b for a, b in zip(times["e2e 224x224"], times[f"model alone {size}"], strict=True))
    res.rows.append(
        Row.from_stats(sec, f"model alone, forward at {size} (batch 1, 224x224's working size)", alone, "ms")
    )
    for label in ("224x224", "1024x768"):
        st = ms[f"e2e {label}"]
        res.rows.append(
            Row.from_stats(
                sec,
                f"end to end {label} (decode, predict, 4 PNGs)",
                st,
                "ms",
                note=f"{st.median / alone.median:.1f}x model alone" if label == "224x224" else "",
            )
        )
        res.rows.append(
            Row.from_stats(
                sec,
                f"  of which Predictor.predict {label}",
                Stats.of(v * 1e3 for v in parts[label]["predict"]),
                "ms",
            )
        )
        res.rows.append(
            Row.from_stats(
                sec,
                f"  of which save_prediction {label}",
                Stats.of(v * 1e3 for v in parts[label]["save"]),
                "ms",
            )
        )
    res.rows.append(
        Row.at_most(sec, "end to end 224 / model alone (per iteration)", ratios, "x", E2E_TARGET_X)
    )
    app_name = "app /predict 224x224 (gradio_client)"
    if app_name in ms:
        app = ms[app_name]
        overhead = Stats.of((a - b) * 1e3 for a, b in zip(times[app_name], times["e2e 224x224"], strict=True))
        res.rows.append(
            Row.from_stats(sec, "app /predict 224x224 via gradio_client", app, "ms", note=app_note)
        )
        if NO_DOWNLOAD in ms:
            res.rows.append(
                Row.from_stats(
                    sec,
                    "  the same, the outputs not downloaded",
                    ms[NO_DOWNLOAD],
                    "ms",
                    note="the client fetches the ~10 output files one after another; a page fetches what it shows",
                )
            )
        res.rows.append(
            Row.at_most(sec, "app overhead (app - end to end, per iteration)", overhead, "ms", APP_TARGET_MS)
        )
        if FLOOR in ms:
            res.rows.append(
                Row.from_stats(
                    sec,
                    "  gradio floor: echo endpoint, same transport",
                    ms[FLOOR],
                    "ms",
                    note="2 images up, 1 down, no work: the part of the overhead Gradio itself costs",
                )
            )
    else:
        res.rows.append(
            Row(
                sec,
                "app /predict 224x224 via gradio_client",
                None,
                "ms",
                target=f"<= {APP_TARGET_MS:.0f} ms overhead",
                verdict="n/a",
                note=app_note,
            )
        )
    res.raw = {
        "model": model_desc,
        "repeats": repeats,
        "times_s": times,
        "parts_s": parts,
        "app": app_note,
        "e2e224_over_model": ratios.to_dict(),
        "medians_ms": {k: v.median for k, v in ms.items()},
    }
    res.notes.append(f"inference model: {model_desc}")
    return res

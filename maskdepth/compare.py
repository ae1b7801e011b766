"""The loss-variant gallery: train variants on the same data, seed and budget, then compare.

The seed compared (i) BCE mask + BCE depth, (ii) the same trained part by part over the
dataset's sets, and (iii) BCE mask + SSIM depth, by eye. Here every variant is scored on
the same held-out samples with working metrics, and a gallery shows the same test
samples side by side. "continue lr" vs "restart lr" answers the seed's open question:
both resume from the same half-trained run for the second half of the budget.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from maskdepth import fileio
from maskdepth.data.transforms import model_input, split_dataset
from maskdepth.errors import TrainingError
from maskdepth.metrics import HIGHER_IS_BETTER, METRIC_NAMES
from maskdepth.predict import colorize_depth
from maskdepth.train import TrainConfig, build_dataset, train


@dataclass(frozen=True)
class Variant:
    """One entry of the comparison: what changes from the base config, and why it is there."""

    description: str
    overrides: dict = field(default_factory=dict)
    resume_from: str | None = None  # name of a helper run whose last.pt this variant resumes
    why: str = ""  # the mechanism: what this loss or schedule rewards, shown with the verdict


VARIANTS: dict[str, Variant] = {
    "bce|bce": Variant(
        "(i) seed: BCE mask + BCE depth",
        {"mask_loss": "bce", "depth_loss": "bce"},
        why="BCE scores every pixel on its own: smooth, stable gradients, but nothing rewards sharp depth edges.",
    ),
    "bce|bce parts": Variant(
        "(ii) seed: BCE + BCE trained part by part over 3 dataset parts, best weights carried over",
        {"mask_loss": "bce", "depth_loss": "bce", "parts": 3},
        why="each part is seen alone, so later parts pull the weights away from earlier ones; with a short "
        "budget every part gets only a third of the steps.",
    ),
    "bce|ssim": Variant(
        "(iii) seed: BCE mask + SSIM depth",
        {"mask_loss": "bce", "depth_loss": "ssim"},
        why="SSIM compares local means, contrasts and correlations in 11x11 windows, so it rewards the "
        "depth map's structure (edges, slopes of floors and walls) rather than each pixel's value alone.",
    ),
    "bce|ssim+bce": Variant(
        "BCE mask + (1 x BCE + 2 x SSIM) depth",
        {"mask_loss": "bce", "depth_loss": "ssim+bce"},
        why="SSIM for structure plus BCE to anchor absolute values: the seed's combination.",
    ),
    "bce|rmse": Variant(
        "BCE mask + RMSE depth",
        {"mask_loss": "bce", "depth_loss": "rmse"},
        why="RMSE squares each pixel's error, so gross depth errors are fixed first; it gives little push to "
        "fine edges, which is why the seed saw it as blurry.",
    ),
    "dice|bce": Variant(
        "Dice mask + BCE depth",
        {"mask_loss": "dice", "depth_loss": "bce"},
        why="Dice optimises overlap directly but its gradient is weak and noisy while the mask is still poor, "
        "so it starts slower than BCE.",
    ),
    "resume continue-lr": Variant(
        "BCE + BCE: half the budget, then resumed with the lr continuing where it stopped",
        {"mask_loss": "bce", "depth_loss": "bce", "resume_lr": "continue"},
        resume_from="half",
        why="with OneCycle the first half ends with the lr annealed to almost zero; continuing it there "
        "leaves the second half barely learning.",
    ),
    "resume restart-lr": Variant(
        "BCE + BCE: half the budget, then resumed with the lr restarted from its initial value",
        {"mask_loss": "bce", "depth_loss": "bce", "resume_lr": "restart"},
        resume_from="half",
        why="restarting warms the lr up again, so the second half trains at full speed from good weights.",
    ),
}
GALLERY_SAMPLES = 4


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")


def _scaled(cfg: TrainConfig, fraction: float) -> dict:
    """Budget fields scaled by ``fraction`` (used for the two halves of the resume variants)."""
    out = {}
    for name in ("epochs", "minutes"):
        if getattr(cfg, name) is not None:
            out[name] = getattr(cfg, name) * fraction
    if cfg.steps is not None:
        out["steps"] = max(1, round(cfg.steps * fraction))
    return out


@dataclass
class ComparisonResult:
    folder: Path
    variants: dict[str, dict]  # name -> {description, metrics, time_s, run_dir, losses}
    verdict: str
    gallery: list[dict]  # [{"caption": str, "path": str}], sample by sample

    def table(self) -> dict[str, dict[str, float]]:
        return {name: {**v["metrics"], "time_s": v["time_s"]} for name, v in self.variants.items()}


def verdict(variants: dict[str, dict]) -> str:
    """Which variant won, on what, measured: the variant with the best mean rank over all metrics."""
    names = list(variants)
    if not names:
        return "no variants were trained"
    ranks = {n: [] for n in names}
    lines = []
    for key, label in METRIC_NAMES.items():
        values = {
            n: variants[n]["metrics"].get(key) for n in names if variants[n]["metrics"].get(key) is not None
        }
        if not values:
            continue
        ordered = sorted(values, key=lambda n: values[n], reverse=HIGHER_IS_BETTER[key])
        for rank, n in enumerate(ordered):
            ranks[n].append(rank)
        lines.append(f"{label}: {ordered[0]} ({values[ordered[0]]:.4f})")
    mean_rank = {n: float(np.mean(r)) if r else float("inf") for n, r in ranks.items()}
    winner = min(mean_rank, key=mean_rank.get)
    text = (
        f"Winner overall: {winner} — {variants[winner]['description']} (mean rank {mean_rank[winner]:.1f} of "
        f"{len(names)} over {len(METRIC_NAMES)} metrics). Best per metric: " + "; ".join(lines) + "."
    )
    why = [
        f"- **{n}**: {VARIANTS[n].why}"
        for n in sorted(names, key=mean_rank.get)
        if VARIANTS.get(n, Variant("")).why
    ]
    return text + ("\n\nWhy, best first:\n" + "\n".join(why) if why else "")


@torch.inference_mode()
def _gallery(runs: dict[str, Path], base: TrainConfig, folder: Path) -> list[dict]:
    """One row image per test sample: input | targets | each variant's mask and depth."""
    from maskdepth.hub import load_model

    dataset = build_dataset(base)
    _, test_split = split_dataset(dataset, base.test_fraction, seed=base.seed)
    samples = [dataset[i] for i in list(test_split.indices)[:GALLERY_SAMPLES]]
    batch = {k: torch.stack([s[k] for s in samples]) for k in ("bg", "fg_bg", "mask", "depth")}
    preds = {}
    for name, run_dir in runs.items():
        model = load_model(run_dir)
        out = model(model_input(batch["bg"], batch["fg_bg"], model.in_channels))
        preds[name] = (torch.sigmoid(out.mask)[:, 0].numpy(), torch.sigmoid(out.depth)[:, 0].numpy())

    def grey(a: np.ndarray) -> np.ndarray:
        return (np.repeat(np.clip(a, 0, 1)[..., None], 3, -1) * 255).round().astype(np.uint8)

    from maskdepth.imageio import save_png_rgb

    items = []
    for i in range(len(samples)):
        rgb = (batch["fg_bg"][i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        tiles = [
            ("input", rgb),
            ("target mask", grey(batch["mask"][i, 0].numpy())),
            ("target depth", colorize_depth(batch["depth"][i, 0].numpy())),
        ]
        for name, (m, d) in preds.items():
            tiles += [(f"{name} mask", grey(m[i])), (f"{name} depth", colorize_depth(d[i]))]
        for j, (caption, tile) in enumerate(tiles):
            path = folder / "gallery" / f"sample{i}-{j:02d}-{_slug(caption)}.png"
            save_png_rgb(tile, path)
            items.append({"caption": f"sample {i}: {caption}", "path": str(path.relative_to(folder))})
    return items


def run_comparison(
    base: TrainConfig,
    variants: list[str],
    out_dir: str | os.PathLike,
    on_event: Callable[[str, object], None] | None = None,
    stop=None,
    command: str | None = None,
) -> ComparisonResult:
    """Train each named variant from ``base`` (same data, seed, budget) and write results.json + gallery."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise TrainingError(f"unknown variant(s) {', '.join(unknown)}; choose from: {', '.join(VARIANTS)}")
    folder = Path(out_dir)
    fileio.check_writable(folder)
    emit = on_event or (lambda name, event: None)
    results: dict[str, dict] = {}
    runs: dict[str, Path] = {}
    helpers: dict[str, Path] = {}
    half_seconds: dict[str, float] = {}
    for name in variants:
        if stop is not None and stop.is_set():
            break
        variant = VARIANTS[name]
        run_dir = folder / _slug(name)
        t0 = time.perf_counter()
        if variant.resume_from:
            half = helpers.get(variant.resume_from)
            if half is None:  # train the shared first half once
                half = folder / f"_{variant.resume_from}"
                cfg = dataclasses.replace(base, **variant.overrides, **_scaled(base, 0.5), out_dir=str(half))
                train(cfg, lambda e, n=name: emit(n, e), stop)
                helpers[variant.resume_from] = half
                half_seconds[variant.resume_from] = time.perf_counter() - t0
            else:  # each resume variant's time counts the shared first half once, like the first
                t0 -= half_seconds[variant.resume_from]
            cfg = dataclasses.replace(
                base, **variant.overrides, **_scaled(base, 0.5), out_dir=str(run_dir), resume=str(half)
            )
        else:
            cfg = dataclasses.replace(base, **variant.overrides, out_dir=str(run_dir))
        result = train(cfg, lambda e, n=name: emit(n, e), stop)
        runs[name] = run_dir
        results[name] = {
            "description": variant.description,
            "metrics": result.best_metrics,
            "time_s": round(time.perf_counter() - t0, 1),
            "run_dir": str(run_dir.relative_to(folder)),
            "losses": {"mask": cfg.mask_loss, "depth": cfg.depth_loss},
        }
    gallery = _gallery(runs, base, folder) if runs else []
    outcome = ComparisonResult(folder=folder, variants=results, verdict=verdict(results), gallery=gallery)
    fileio.write_json(
        folder / "results.json",
        {
            "variants": results,
            "verdict": outcome.verdict,
            "gallery": gallery,
            "base_config": base.to_dict(),
            "command": command,
        },
    )
    return outcome


def load_comparison(folder: str | os.PathLike) -> ComparisonResult | None:
    """Read a comparison written by :func:`run_comparison` (None if there is none)."""
    from maskdepth.runs import read_json

    folder = Path(folder)
    data = read_json(folder / "results.json")
    if not data:
        return None
    return ComparisonResult(
        folder=folder,
        variants=data.get("variants", {}),
        verdict=data.get("verdict", ""),
        gallery=data.get("gallery", []),
    )

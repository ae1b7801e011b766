"""The loss-variant comparison: train every variant with the same seeds, data and budget; compare.

The seed compared (i) BCE mask + BCE depth, (ii) the same trained part by part over the
dataset's sets, and (iii) BCE mask + SSIM depth, by eye, and asked whether a resumed run
should continue its learning rate or restart it. Here each variant is trained once per seed
(seed ``k`` gives every variant the same model init, data order and held-out samples), its
final weights are scored on held-out samples spread over the test split, and the verdict
(:mod:`maskdepth.compare.stats`) names a difference only where its paired interval over the
seeds excludes zero. "continue lr" vs "restart lr": both resume from the same half-trained
run (one per seed) for the second half of the budget.

Layout of a comparison folder: ``results.json``; ``<variant>/`` (seed index 0) and
``<variant>-seed<k>/`` run folders; ``_half[-seed<k>]/`` the resume pair's shared first half;
``gallery/`` PNG tiles (:mod:`maskdepth.compare.gallery`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Subset

from maskdepth import fileio
from maskdepth.compare import stats as compare_stats
from maskdepth.compare.gallery import gallery_samples, spread, write_gallery
from maskdepth.compare.variants import BASELINE, LR_PAIR, VARIANTS, Variant
from maskdepth.data.transforms import split_dataset
from maskdepth.errors import TrainingError
from maskdepth.hub.pretrained import WNet
from maskdepth.model.metrics import METRIC_NAMES
from maskdepth.naming import slug
from maskdepth.training.evaluate import evaluate
from maskdepth.training.loop import EvalEvent, StepEvent, TrainConfig, build_dataset, train

__all__ = [
    "BASELINE",
    "DEFAULT_SEEDS",
    "LR_PAIR",
    "VARIANTS",
    "ComparisonResult",
    "RunKey",
    "Variant",
    "load_comparison",
    "run_comparison",
    "shipped_command",
]

DEFAULT_SEEDS = 3
SCORE_SAMPLES = 512  # held-out samples (spread over each seed's test split) scoring the final weights
CURVE_EVALS = 6  # evaluations during a run with a step budget: the held-out curves
CURVE_POINTS = 60  # training-loss points kept per run (means of consecutive steps)
# The shipped comparison (comparisons/default, its results.json records the command): room scenes with
# exact pastes, width 16, so 8 variants x 3 seeds x 300 steps of batch 32 take about an hour on 2 CPU
# cores (BENCHMARKS.md, "Loss variants").
SHIPPED_ARGS = ("--scene-families", "rooms", "--no-two-shot", "--base-width", "16", "--steps", "300")
SHIPPED_ARGS += ("--batch-size", "32", "--eval-samples", "128")


def shipped_command(out: str | os.PathLike = "comparisons/default") -> str:
    """The command that writes the shipped comparison (every variant, :data:`DEFAULT_SEEDS` seeds)."""
    return " ".join(
        ["python -m maskdepth compare", *SHIPPED_ARGS, "--seeds", str(DEFAULT_SEEDS), "--out", str(out)]
    )


def _scaled(cfg: TrainConfig, fraction: float) -> dict:
    """Budget fields scaled by ``fraction`` (used for the two halves of the resume variants)."""
    out = {}
    for name in ("epochs", "minutes"):
        if getattr(cfg, name) is not None:
            out[name] = getattr(cfg, name) * fraction
    if cfg.steps is not None:
        out["steps"] = max(1, round(cfg.steps * fraction))
    return out


@dataclass(frozen=True)
class RunKey:
    """Which run an event belongs to: variant, seed, and the run's place among all runs."""

    variant: str
    seed: int  # the TrainConfig seed
    seed_index: int  # 0 .. seeds - 1
    index: int  # 0 .. total - 1, in training order (seed by seed, variants in the order given)
    total: int


@dataclass
class ComparisonResult:
    folder: Path
    variants: dict[str, dict]  # name -> {description, about, losses, seeds, summary, metrics, time_s, ...}
    verdict: str
    gallery: dict  # {"seed", "samples": [...], "rows": {variant: [...]}} (compare_gallery.write_gallery)
    baseline: str | None = None
    seeds: list[int] = field(default_factory=list)
    command: str | None = None
    budget: dict = field(default_factory=dict)

    def table(self) -> dict[str, dict[str, float]]:
        """name -> mean of each metric over the seeds, and the mean training time per seed."""
        return {name: {**v["metrics"], "time_s": v["time_s"]} for name, v in self.variants.items()}


class _Recorder:
    """Forwards a run's events and keeps its curves (steps offset by ``offset`` for a resumed half)."""

    def __init__(self, emit: Callable[[object], None], offset: int = 0, base: _Recorder | None = None):
        self.emit, self.offset = emit, offset
        self.steps: list[tuple[int, float]] = list(base.steps) if base else []
        self.evals: list[dict] = list(base.evals) if base else []

    def __call__(self, event: object) -> None:
        if isinstance(event, StepEvent):
            self.steps.append((event.step + self.offset, event.loss))
        elif isinstance(event, EvalEvent):
            self.evals.append({"step": event.step + self.offset, "metrics": dict(event.metrics)})
        self.emit(event)

    def curve(self) -> dict[str, list[float]]:
        if not self.steps:
            return {"step": [], "loss": []}
        chunks = np.array_split(np.asarray(self.steps, np.float64), min(CURVE_POINTS, len(self.steps)))
        return {
            "step": [round(float(c[:, 0].mean()), 1) for c in chunks],
            "loss": [float(c[:, 1].mean()) for c in chunks],
        }


def final_model(run_dir: Path) -> WNet | None:
    """The run's weights after its last step (last.pt), else its best weights, else None."""
    last = run_dir / "last.pt"
    if last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=True)
        model = WNet(**state["model_config"])
        model.load_state_dict(state["model"])
        return model.eval()
    if (run_dir / "model.safetensors").is_file():
        from maskdepth.hub.transfer import load_model

        return load_model(run_dir)
    return None


def _train_seed(
    base: TrainConfig, variants: list[str], seed_index: int, folder: Path, emit, stop, first: int, total: int
) -> dict[str, dict]:
    """Train every variant with seed ``base.seed + seed_index``; name -> its per-seed entry."""
    seed = base.seed + seed_index
    suffix = f"-seed{seed_index}" if seed_index else ""
    cfg0 = dataclasses.replace(base, seed=seed)
    if cfg0.eval_every is None and cfg0.steps is not None:  # a few held-out points per run: the curves
        cfg0 = dataclasses.replace(cfg0, eval_every=max(1, math.ceil(cfg0.steps / CURVE_EVALS)))
    dataset = build_dataset(cfg0.data_settings())
    _, test_split = split_dataset(dataset, cfg0.test_fraction, seed=seed)  # the split train() makes
    scored = Subset(dataset, spread(list(test_split.indices), SCORE_SAMPLES))
    halves: dict[str, tuple[Path, _Recorder, float, int]] = {}
    entries: dict[str, dict] = {}
    for j, name in enumerate(variants):
        if stop is not None and stop.is_set():
            break
        key = RunKey(name, seed, seed_index, first + j, total)
        forward = lambda e, k=key: emit(k, e)  # noqa: E731
        variant = VARIANTS[name]
        run_dir = folder / (slug(name, keep="") + suffix)
        t0 = time.perf_counter()
        recorder = _Recorder(forward)
        if variant.resume_from:
            if variant.resume_from not in halves:  # train the shared first half once per seed
                half_dir = folder / f"_{variant.resume_from}{suffix}"
                cfg = dataclasses.replace(
                    cfg0, **variant.overrides, **_scaled(cfg0, 0.5), out_dir=str(half_dir)
                )
                half_rec = _Recorder(forward)
                half = train(cfg, half_rec, stop)
                halves[variant.resume_from] = (half_dir, half_rec, time.perf_counter() - t0, half.steps)
            half_dir, half_rec, half_s, half_steps = halves[variant.resume_from]
            t0 = time.perf_counter() - half_s  # each resume variant's time counts the shared half once
            recorder = _Recorder(forward, offset=half_steps, base=half_rec)
            cfg = dataclasses.replace(
                cfg0, **variant.overrides, **_scaled(cfg0, 0.5), out_dir=str(run_dir), resume=str(half_dir)
            )
        else:
            cfg = dataclasses.replace(cfg0, **variant.overrides, out_dir=str(run_dir))
        result = train(cfg, recorder, stop)
        if result.reason == "stopped":
            break  # an unfinished run is not comparable with the others
        model = final_model(run_dir)
        metrics = dict.fromkeys(METRIC_NAMES)
        if model is not None:
            metrics = evaluate(model, scored, loss_cfg=cfg.loss_config(), batch_size=64).metrics
        entries[name] = {
            "seed": seed,
            "metrics": metrics,
            "time_s": round(time.perf_counter() - t0, 1),
            "steps": recorder.steps[-1][0] if recorder.steps else 0,
            "reason": result.reason,
            "n_scored": len(scored),
            "run_dir": str(run_dir.relative_to(folder)),
            "curve": recorder.curve(),
            "evals": recorder.evals,
        }
    return entries


def _assemble(per_seed: list[dict[str, dict]], variants: list[str]) -> tuple[dict, str | None, dict]:
    """(variant entries with seeds, summary, paired differences; the baseline; the lr question)."""
    out: dict[str, dict] = {}
    for name in variants:
        seeds = [entries[name] for entries in per_seed if name in entries]
        if not seeds:
            continue
        summary = compare_stats.summarize(seeds)
        out[name] = {
            "description": VARIANTS[name].description,
            "about": VARIANTS[name].about,
            "losses": {
                "mask": VARIANTS[name].overrides.get("mask_loss"),
                "depth": VARIANTS[name].overrides.get("depth_loss"),
            },
            "seeds": seeds,
            "summary": summary,
            "metrics": {k: summary[k]["mean"] for k in METRIC_NAMES},
            "time_s": round(summary["time_s"]["mean"], 1),
        }
    baseline = BASELINE if BASELINE in out else next(iter(out), None)
    for name, entry in out.items():
        if name != baseline:
            entry["vs_baseline"] = compare_stats.paired(entry["seeds"], out[baseline]["seeds"])
    lr = {}
    if all(n in out for n in LR_PAIR):
        lr = {
            "continue": LR_PAIR[0],
            "restart": LR_PAIR[1],
            "restart_minus_continue": compare_stats.paired(
                out[LR_PAIR[1]]["seeds"], out[LR_PAIR[0]]["seeds"]
            ),
        }
    return out, baseline, lr


def run_comparison(
    base: TrainConfig,
    variants: list[str],
    out_dir: str | os.PathLike,
    on_event: Callable[[RunKey, object], None] | None = None,
    stop=None,
    command: str | None = None,
    seeds: int = DEFAULT_SEEDS,
) -> ComparisonResult:
    """Train each named variant from ``base`` with ``seeds`` seeds; write results.json and the gallery.

    Seeds are ``base.seed, base.seed + 1, ...``; all variants train with seed k before any trains
    with seed k + 1, so a stopped comparison keeps complete pairs. ``on_event(key, event)`` gets
    every training event with the :class:`RunKey` of its run.
    """
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise TrainingError(f"unknown variant(s) {', '.join(unknown)}; choose from: {', '.join(VARIANTS)}")
    if seeds < 1:
        raise TrainingError(f"seeds must be >= 1, got {seeds}")
    folder = Path(out_dir)
    fileio.check_writable(folder)
    emit = on_event or (lambda key, event: None)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    per_seed = []
    for k in range(seeds):
        if stop is not None and stop.is_set():
            break
        per_seed.append(
            _train_seed(base, variants, k, folder, emit, stop, k * len(variants), seeds * len(variants))
        )
    results, baseline, lr = _assemble(per_seed, variants)
    gallery: dict = {}
    if per_seed and per_seed[0]:
        dataset = build_dataset(base.data_settings())
        _, test_split = split_dataset(dataset, base.test_fraction, seed=base.seed)
        models = {n: final_model(folder / e["run_dir"]) for n, e in per_seed[0].items()}
        models = {n: m for n, m in models.items() if m is not None}
        gallery = write_gallery(
            models, dataset, gallery_samples(dataset, test_split.indices), folder, base.seed
        )
    about = {n: VARIANTS[n].about for n in results}
    lr_pair = LR_PAIR if lr else None
    n_scored = min((e["n_scored"] for entries in per_seed for e in entries.values()), default=0)
    text = compare_stats.verdict(results, baseline, lr_pair, about, n_scored)
    budget = {
        "steps": base.steps,
        "minutes": base.minutes,
        "epochs": base.epochs,
        "batch_size": base.batch_size,
        "base_width": base.base_width,
        "size": base.size,
        "seeds": len(per_seed),
        "runs": sum(len(e) for e in per_seed),
        "wall_s": round(time.perf_counter() - wall0, 1),
        "cpu_s": round(time.process_time() - cpu0, 1),
        "torch_threads": torch.get_num_threads(),
    }
    outcome = ComparisonResult(
        folder,
        results,
        text,
        gallery,
        baseline,
        [base.seed + k for k in range(len(per_seed))],
        command,
        budget,
    )
    fileio.write_json(
        folder / "results.json",
        {
            "variants": results,
            "variant_order": list(results),
            "baseline": baseline,
            "seeds": outcome.seeds,
            "interval": compare_stats.INTERVAL,
            "scored_on": f"final weights of each run on {SCORE_SAMPLES} held-out samples spread over the "
            "seed's test split (fewer if the split is smaller)",
            "lr_question": lr,
            "verdict": text,
            "gallery": gallery,
            "budget": budget,
            "base_config": base.to_dict(),
            "command": command,
        },
    )
    return outcome


def load_comparison(folder: str | os.PathLike) -> ComparisonResult | None:
    """Read a comparison written by :func:`run_comparison` (None if there is none)."""
    from maskdepth.fileio import read_json

    folder = Path(folder)
    data = read_json(folder / "results.json")
    if not data:
        return None
    variants = data.get("variants", {})
    order = [n for n in data.get("variant_order", []) if n in variants]
    variants = {n: variants[n] for n in order + [n for n in variants if n not in order]}
    gallery = data.get("gallery", {})
    return ComparisonResult(
        folder=folder,
        variants=variants,
        verdict=data.get("verdict", ""),
        gallery=gallery if isinstance(gallery, dict) else {},
        baseline=data.get("baseline"),
        seeds=data.get("seeds", []),
        command=data.get("command"),
        budget=data.get("budget", {}),
    )

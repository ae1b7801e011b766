"""Quality per CPU-minute: the shipped recipe against the seed's, same loop, same wall-clock budget.

Each training runs in its own subprocess (``python -m bench.quality SPEC.json``), so its
peak memory (VmHWM, read inside it) is its own and runs cannot share warm caches. Both
are then scored on the same held-out samples: the first ``eval_n`` of the test split that
``maskdepth.training.loop.train`` itself holds out (``split_dataset`` with seed 0).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, SEED_DATA, Row, SectionResult, seed_config, shipped_config, verdict, vm_hwm_mb

METRICS = {
    "mask_iou": ("mask IoU", True),
    "mask_dice": ("mask Dice", True),
    "depth_rmse": ("depth RMSE", False),
    "depth_delta1": ("depth δ<1.25", True),
}
TARGET_MINUTES = 15.0
TARGET_IOU = 0.95
TARGET_DELTA = 0.90
RECIPES = {
    "shipped": shipped_config,
    "seed": seed_config,
    # The shipped recipe with its forward forced to one precision (bench/precision.py compares them).
    "bf16": lambda out_dir, **kw: shipped_config(out_dir, **{"precision": "bf16", **kw}),
    "fp32": lambda out_dir, **kw: shipped_config(out_dir, **{"precision": "fp32", **kw}),
}


# ---- inside the subprocess ---------------------------------------------------------------------


def train_and_score(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one recipe for ``spec['minutes']`` and score it on the held-out samples."""
    import torch
    from safetensors.torch import load_file
    from torch.utils.data import Subset

    from maskdepth.data.synthetic import SyntheticScenes
    from maskdepth.data.transforms import split_dataset
    from maskdepth.model.wnet import WNet
    from maskdepth.training.evaluate import evaluate
    from maskdepth.training.loop import StepEvent, train

    run_dir = Path(spec["run_dir"])
    # eval_samples is small: the in-loop evaluation only picks "best" weights (a single final one
    # here, as no epoch ends within these budgets); the real scoring is below, on eval_n samples.
    cfg = RECIPES[spec["recipe"]](run_dir, minutes=spec["minutes"], sample_every=0, eval_samples=64)
    last: dict[str, float] = {"step": 0, "elapsed_s": 0.0, "loss": float("nan")}

    def on_event(event: object) -> None:
        if isinstance(event, StepEvent):
            last.update(step=event.step, elapsed_s=event.elapsed_s, loss=event.loss)

    result = train(cfg, on_event=on_event)
    hwm_train = vm_hwm_mb()
    config = json.loads((run_dir / "config.json").read_text())
    model = WNet(**config)
    model.load_state_dict(load_file(str(run_dir / "model.safetensors")))
    data = SyntheticScenes(**SEED_DATA, size=cfg.size, seed=cfg.data_seed)
    _, test = split_dataset(data, cfg.test_fraction, seed=cfg.seed)
    held_out = Subset(data, list(test.indices)[: spec["eval_n"]])
    t = time.perf_counter()
    scored = evaluate(model, held_out, batch_size=64)
    return {
        "recipe": spec["recipe"],
        "minutes": spec["minutes"],
        "config": cfg.to_dict(),
        "reason": result.reason,
        "message": result.message,
        "steps": int(last["step"]),
        "images": int(last["step"]) * cfg.batch_size,
        "train_s": last["elapsed_s"],
        "img_s": int(last["step"]) * cfg.batch_size / max(last["elapsed_s"], 1e-9),
        "final_train_loss": last["loss"],
        "metrics": scored.metrics,
        "eval_n": scored.n_images,
        "eval_s": time.perf_counter() - t,
        "vm_hwm_train_mb": hwm_train,
        "vm_hwm_end_mb": vm_hwm_mb(),
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str]) -> int:
    """``python -m bench.quality SPEC.json``: writes the result next to the spec (``spec['result']``)."""
    spec = json.loads(Path(argv[0]).read_text())
    out = train_and_score(spec)
    Path(spec["result"]).write_text(json.dumps(out, indent=1))
    return 0


# ---- in the benchmark process ------------------------------------------------------------------


def run_one(recipe: str, minutes: float, eval_n: int, work: Path) -> dict[str, Any]:
    """One training in a subprocess; raises RuntimeError with the log's tail if it fails."""
    tag = f"{recipe}-{minutes:g}min"
    spec = {
        "recipe": recipe,
        "minutes": minutes,
        "eval_n": eval_n,
        "run_dir": str(work / tag),
        "result": str(work / f"{tag}.json"),
    }
    spec_path = work / f"{tag}.spec.json"
    spec_path.write_text(json.dumps(spec))
    log = work / f"{tag}.log"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    with open(log, "wb") as f:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.quality", str(spec_path)],
            cwd=str(ROOT),
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
            timeout=minutes * 60 * 3 + 1800,
        )
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-1500:]
        raise RuntimeError(f"{tag} failed (exit {proc.returncode}):\n{tail}")
    out = json.loads(Path(spec["result"]).read_text())
    out["children_maxrss_mb_so_far"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return out


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def run_quality(
    budgets: list[float],
    *,
    eval_n: int,
    work: Path,
    log: Any = print,
    recipes: tuple[str, str] = ("shipped", "seed"),
) -> SectionResult:
    """Section 5: for each budget, both recipes (order alternating per budget), scored alike."""
    res = SectionResult()
    runs: dict[float, dict[str, dict[str, Any]]] = {}
    for i, minutes in enumerate(budgets):
        order = list(recipes) if i % 2 == 0 else list(reversed(recipes))
        runs[minutes] = {}
        for recipe in order:
            log(f"  quality: {recipe} recipe for {minutes:g} min ...")
            try:
                runs[minutes][recipe] = run_one(recipe, minutes, eval_n, work)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                res.notes.append(f"quality {recipe} @ {minutes:g} min failed: {e}")
    res.raw = {"budgets": budgets, "eval_n": eval_n, "runs": {f"{m:g}": r for m, r in runs.items()}}

    headers = [
        "budget",
        "recipe",
        "steps",
        "img/s (budget)",
        "mask IoU",
        "mask Dice",
        "depth RMSE",
        "depth δ<1.25",
        "peak RSS (train)",
    ]
    table_rows = []
    for minutes, by_recipe in runs.items():
        for recipe in recipes:
            r = by_recipe.get(recipe)
            if r is None:
                continue
            m = r["metrics"]
            table_rows.append(
                [
                    f"{minutes:g} min",
                    recipe,
                    str(r["steps"]),
                    _fmt(r["img_s"], 1),
                    _fmt(m.get("mask_iou")),
                    _fmt(m.get("mask_dice")),
                    _fmt(m.get("depth_rmse"), 4),
                    _fmt(m.get("depth_delta1")),
                    f"{r['vm_hwm_train_mb']:.0f} MiB" if r.get("vm_hwm_train_mb") else "-",
                ]
            )
    res.tables.append(
        {
            "title": f"Quality per CPU-minute (held-out: first {eval_n} test samples)",
            "headers": headers,
            "rows": table_rows,
        }
    )

    sec = "5 quality"
    at = TARGET_MINUTES if TARGET_MINUTES in runs else (max(runs) if runs else None)
    label = f"@ {at:g} min" + ("" if at == TARGET_MINUTES else f" (target defined at {TARGET_MINUTES:g} min)")
    pair = runs.get(at, {}) if at is not None else {}
    shipped, seed = pair.get("shipped"), pair.get("seed")
    if shipped and seed:
        wins = {
            name: (shipped["metrics"][k] > seed["metrics"][k])
            if higher
            else (shipped["metrics"][k] < seed["metrics"][k])
            for k, (name, higher) in METRICS.items()
        }
        lost = [n for n, ok in wins.items() if not ok]
        res.rows.append(
            Row(
                sec,
                f"shipped beats seed on every metric {label}",
                None,
                target="all 4",
                verdict=verdict(not lost),
                note=(f"loses on {', '.join(lost)}; " if lost else "") + "values in the quality table",
            )
        )
        for name, key, floor in (
            ("mask IoU", "mask_iou", TARGET_IOU),
            ("depth δ<1.25", "depth_delta1", TARGET_DELTA),
        ):
            value = shipped["metrics"][key]
            res.rows.append(
                Row(
                    sec,
                    f"shipped {name} {label}",
                    value,
                    target=f">= {floor}",
                    verdict=verdict(value >= floor),
                )
            )
    else:
        res.rows.append(
            Row(
                sec,
                "shipped beats seed on every metric",
                None,
                target="all 4",
                verdict="n/a",
                note="a run failed; see notes",
            )
        )
    return res


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""One row per model of every quality check (to compare models).

    .venv/bin/python -m bench.model_report --models checkpoints runs/real-a [--limit 1000] [--out report.json]

Columns, each on data the model never trained on:
- synthetic scenes, 100 x 100 x 20 samples, test split, ``--limit`` samples spread over it
  (``evaluate --limit`` takes the same spread), at 64 px unless the column says otherwise:
  ``rooms`` one image + its paste in the room scenes (the first shipped model's home ground:
  ``evaluate --scene-families rooms --no-two-shot --size 64``), also at 128 px (the depth view's
  scale); ``mix 2-shot`` the full training mix as plain two shots (``evaluate --scene-families
  all --wall-shadows 0 --black-edges 0 --camouflage 0 --relight 0 --size 64``); ``street 2-shot``
  the held-out family (never trained on) as plain two shots, at 64 and 128 px (``evaluate
  --scene-families heldout`` and the same four shares at 0);
- real photos: ``real pairs`` bench/real_pairs.py (held-out Gradio photos as two shots, through
  the CLI at its defaults); ``check set`` bench/predict_quality.py's 12 scikit-image pastes at
  the default 256 px, exact and as two shots;
- real depth: bench/real_depth.py (Middlebury's motorcycle and aloe, bg == composite): mean
  Spearman over every view of both scenes at 128 / 256 / 512 px, each scene's mean at 256 px, and
  the largest share of pixels the mask called foreground.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch
from torch.utils.data import Subset

from bench import predict_quality, real_depth, real_pairs
from maskdepth.data import build_dataset, spread
from maskdepth.data.transforms import split_dataset
from maskdepth.hub.transfer import load_model
from maskdepth.training.config import TrainConfig
from maskdepth.training.evaluate import evaluate

# Plain two shots (camera effects and ground shadows only), the same for every model so the rows compare.
DATA = {"backgrounds": 100, "foregrounds": 100, "positions": 20, "steps": 1}
DATA |= {"wall_shadows": 0.0, "black_edges": 0.0, "camouflage": 0.0, "relight": 0.0}
SYNTHETIC = {  # column -> (scene families, two shots, size)
    "rooms": ("rooms", False, 64),
    "rooms 128": ("rooms", False, 128),
    "mix 2-shot": ("all", True, 64),
    "street 2-shot": ("heldout", True, 64),
    "street 2-shot 128": ("heldout", True, 128),
}


def synthetic(model_dir: str, limit: int) -> dict[str, dict[str, float]]:
    model = load_model(model_dir)
    out = {}
    for column, (families, two_shot, size) in SYNTHETIC.items():
        cfg = TrainConfig(**DATA, scene_families=families, two_shot=two_shot, size=size)
        _, test = split_dataset(build_dataset(cfg.data_settings()), cfg.test_fraction, seed=cfg.seed)
        subset = Subset(test, spread(list(range(len(test))), limit))
        out[column] = evaluate(model, subset, loss_cfg=cfg.loss_config(), batch_size=32).metrics
    return out


def real(model_dir: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        pairs = real_pairs.score(model_dir, Path(tmp), real_pairs.write(Path(tmp)))
    out = {"real pairs": statistics.mean(pairs["model (CLI defaults)"].values())}
    out["real pairs min"] = min(pairs["model (CLI defaults)"].values())
    for two_shot in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            names = predict_quality.write(tmp, two_shot=two_shot)
            rows = predict_quality.score(model_dir, [256], Path(tmp), names)
        out["check set 2-shot" if two_shot else "check set"] = rows["256 px guided"]["mean_iou"]
    depth = real_depth.score(model_dir, [128, 256, 512])
    for res in (128, 256, 512):
        out[f"depth rho {res}"] = depth[f"{res} px"]["mean_spearman"]
    for scene, rho in depth["256 px"]["scene_mean"].items():
        out[f"{scene} rho"] = rho
    out["depth max mask"] = max(depth[f"{r} px"]["max_mask_fraction"] for r in (128, 256, 512))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--limit", type=int, default=1000, help="synthetic test samples per column")
    p.add_argument("--out", help="write the report as JSON here")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    report = {m: {"synthetic": synthetic(m, args.limit), "real": real(m)} for m in args.models}
    print(f"synthetic: mask IoU / depth δ<1.25 / depth Spearman, {args.limit} test samples per column")
    print(f"{'model':<28} " + " ".join(f"{c:>20}" for c in SYNTHETIC))
    for m, r in report.items():
        cells = [r["synthetic"][c] for c in SYNTHETIC]
        row = (f"{x['mask_iou']:.3f}/{x['depth_delta1']:.3f}/{x['depth_spearman']:+.2f}" for x in cells)
        print(f"{m:<28} " + " ".join(f"{c:>20}" for c in row))
    keys = list(next(iter(report.values()))["real"])
    print("\nreal photos: mask IoU (pairs, check sets), depth Spearman and mask share (real_depth scenes)")
    print(f"{'model':<28} " + " ".join(f"{k:>{len(k)}}" for k in keys))
    for m, r in report.items():
        print(f"{m:<28} " + " ".join(f"{r['real'][k]:>{len(k)}.3f}" for k in keys))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

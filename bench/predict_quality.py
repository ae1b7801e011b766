"""Mask IoU on the real-photo check set (examples/checkset.py) vs the Predictor's working resolution.

    .venv/bin/python -m bench.predict_quality [--model checkpoints] [--resolutions 64,128,256,512]

For each working resolution (long side, pixels): mean mask IoU (prediction > 0.5 vs the
cut-out's alpha > 0.5) with the guided refinement and with plain bilinear upsampling, and the
median time of ``Predictor.predict`` per pair. Beside it the pixel-difference baseline
``max |fg_bg - bg| > 8``. Prints a table and, with --out, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

from checkset import write  # noqa: E402

from maskdepth.predict.predictor import Predictor  # noqa: E402

DIFF_THRESHOLD = 8  # grey levels: the baseline calls a pixel "changed" above this


def iou(pred: np.ndarray, true: np.ndarray) -> float:
    union = np.logical_or(pred, true).sum()
    return float(np.logical_and(pred, true).sum() / union) if union else 1.0


def pixel_difference(fg_bg: Path, bg: Path) -> np.ndarray:
    a = np.asarray(Image.open(fg_bg).convert("RGB"), np.int16)
    b = np.asarray(Image.open(bg).convert("RGB"), np.int16)
    return np.abs(a - b).max(axis=2) > DIFF_THRESHOLD


def score(model: str, resolutions: list[int], folder: Path, names: list[str]) -> dict:
    truth = {n: np.asarray(Image.open(folder / "mask" / f"{n}.png")) > 127 for n in names}
    pairs = {n: (folder / "fg_bg" / f"{n}.png", folder / "bg" / f"{n}.png") for n in names}
    rows = {
        "pixel difference": {
            "mean_iou": statistics.mean(iou(pixel_difference(*pairs[n]), truth[n]) for n in names)
        }
    }
    predictor = Predictor.from_source(model)  # loaded once; each row sets its resolution and refinement
    for res in resolutions:
        for refine in (True, False):
            predictor.resolution, predictor.refine = res, refine
            ious, times = [], []
            for n in names:
                t0 = time.perf_counter()
                pred = predictor.predict(*pairs[n])
                times.append(time.perf_counter() - t0)
                ious.append(iou(pred.mask > 0.5, truth[n]))
            rows[f"{res} px {'guided' if refine else 'bilinear'}"] = {
                "resolution": res,
                "refine": refine,
                "mean_iou": statistics.mean(ious),
                "min_iou": min(ious),
                "per_pair": dict(zip(names, ious, strict=True)),
                "median_s": statistics.median(times),
            }
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "checkpoints"))
    p.add_argument("--resolutions", default="64,128,192,256,384,512")
    p.add_argument(
        "--two-shot", action="store_true", help="the pairs as two separate shots (see checkset.py)"
    )
    p.add_argument("--out", help="write the rows as JSON here")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        names = write(tmp, two_shot=args.two_shot)
        rows = score(args.model, [int(r) for r in args.resolutions.split(",")], Path(tmp), names)
    print(
        f"{'method':<24} {'mean IoU':>9} {'min IoU':>8} {'s/pair':>8}   ({len(names)} real-photo pastes{', two shots' if args.two_shot else ''})"
    )
    for name, row in rows.items():
        mn = f"{row['min_iou']:.3f}" if "min_iou" in row else ""
        t = f"{row['median_s']:.3f}" if "median_s" in row else ""
        print(f"{name:<24} {row['mean_iou']:>9.3f} {mn:>8} {t:>8}")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

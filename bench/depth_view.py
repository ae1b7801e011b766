"""Depth through the Predictor at photo-like sizes, with the depth taken from smaller whole-scene views.

    .venv/bin/python -m bench.depth_view --model checkpoints [--depth-views none,128,ensemble] [-n 48]

Synthetic test samples rendered at 320x240 (the full scene mix as plain two shots, the held-out street
family as plain two shots, and the classic rooms with exact pastes) are written as PNG pairs and
predicted at the default working resolution (256 px long side); the depth is taken either from
that same forward ("none"), from a second forward whose long side is the given number, or from
the Predictor's default "ensemble" (views at every multiple of 32 across the trained range, each
with its mirror image, the pixels ranked by their mean and valued as the 128 px view).
Printed: depth δ<1.25 and Spearman (mean over samples) per data set, the real scenes' mean
Spearman (every bench/real_depth.py view) and the median time per prediction.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.stats import spearmanr

from bench import real_depth
from maskdepth.data import spread
from maskdepth.data.synthetic import SyntheticScenes
from maskdepth.data.transforms import split_dataset
from maskdepth.data.twoshot import TwoShot
from maskdepth.predict.predictor import Predictor

# Plain two shots: the camera effects and ground shadows only.
PLAIN = TwoShot(wall_shadow_p=0, black_edge_p=0, camouflage_p=0, relight_p=0)
SETS = {"mix 2-shot": ("all", PLAIN), "street 2-shot": ("heldout", PLAIN), "rooms exact": ("rooms", False)}


def write_sets(folder: Path, n: int) -> dict[str, list[tuple[Path, Path, np.ndarray]]]:
    out = {}
    for name, (families, two_shot) in SETS.items():
        ds = SyntheticScenes(100, 100, 20, size=(240, 320), families=families, two_shot=two_shot)
        _, test = split_dataset(ds, 0.3, seed=0)
        items = []
        for k, i in enumerate(spread(list(test.indices), n)):
            s = ds[i]
            paths = []
            for key in ("fg_bg", "bg"):
                p = folder / f"{name.replace(' ', '_')}_{k}_{key}.png"
                Image.fromarray((s[key].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(p)
                paths.append(p)
            items.append((paths[0], paths[1], s["depth"][0].numpy()))
        out[name] = items
    return out


def depth_scores(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    valid = true > 0
    p, t = np.maximum(pred[valid], 1e-6), true[valid]
    delta = float((np.maximum(p / t, t / p) < 1.25).mean())
    return delta, float(spearmanr(p, t).statistic)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="checkpoints")
    ap.add_argument(
        "--depth-views", default="none,128,ensemble", help="comma-separated: none, a number, ensemble"
    )
    ap.add_argument("-n", type=int, default=48, help="samples per data set")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    # The synthetic pairs are aligned by construction (<= 2 px): the views are measured, not the registration.
    predictor = Predictor.from_source(args.model)
    predictor.align = False
    with tempfile.TemporaryDirectory() as tmp:
        sets = write_sets(Path(tmp), args.n)
        print(
            f"{'depth view':<11} "
            + " ".join(f"{s + ' δ/ρ':>22}" for s in SETS)
            + f" {'real depth ρ':>13} {'s/pred':>7}"
        )
        for value in args.depth_views.split(","):
            predictor.depth_view = value  # "none", a number or "ensemble" (Predictor.depth_view parses it)
            cells, times = [], []
            for items in sets.values():
                scores = []
                for fg, bg, depth in items:
                    t = time.perf_counter()
                    pred = predictor.predict(fg, bg)
                    times.append(time.perf_counter() - t)
                    scores.append(depth_scores(pred.depth, depth))
                cells.append(
                    f"{statistics.mean(d for d, _ in scores):.3f}/{statistics.mean(r for _, r in scores):+.3f}"
                )
            real = real_depth.score_predictor(predictor)
            print(
                f"{value:<11} "
                + " ".join(f"{c:>22}" for c in cells)
                + f" {real:>+13.3f} {statistics.median(times):>7.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

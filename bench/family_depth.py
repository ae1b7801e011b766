"""Depth on the synthetic scene families given as bg == composite, beside the floor gradient.

    .venv/bin/python -m bench.family_depth [--model checkpoints] [-n 120] [--families train]

The same protocol as bench/real_depth.py (one photo given as both inputs, nothing pasted: the
pasted objects become part of the scene), on ``-n`` test samples spread over the training mix
(``--families``: a ``--scene-families`` mix or a family name, default ``train``; 100 x 100 x 20,
test split, rendered at 320x240 and predicted at the Predictor's defaults). Per family: the mean Spearman of predicted depth with the exact depth, and
that of the "floor gradient" (depth = row index: lower is nearer). Read beside real_depth: a model
far over the gradient here and under it on real scenes is held back by how the scenes look, not
by what it can fit or by the layouts the mix covers.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.real_depth import rank_corr
from maskdepth.data import spread
from maskdepth.data.synthetic import SyntheticScenes
from maskdepth.data.transforms import split_dataset
from maskdepth.predict import Predictor


def score(model: str, n: int, families: str = "train") -> dict[str, dict[str, float]]:
    """family -> {"samples", "model", "floor gradient"} (mean Spearman)."""
    predictor = Predictor.from_source(model)
    ds = SyntheticScenes(100, 100, 20, size=(240, 320), families=families, two_shot=False)
    _, test = split_dataset(ds, 0.3, seed=0)
    rows: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scene.png"
        for i in spread(list(test.indices), n):
            sample = ds[i]
            Image.fromarray((sample["fg_bg"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(
                path
            )
            depth = sample["depth"][0].numpy()
            depth = np.where(depth > 0, depth, np.nan)
            pred = predictor.predict(path, path).depth
            floor = np.indices(depth.shape)[0].astype(np.float32)
            rows.setdefault(ds.sample_family(i), []).append((rank_corr(pred, depth), rank_corr(floor, depth)))
    return {
        family: {
            "samples": len(r),
            "model": statistics.mean(m for m, _ in r),
            "floor gradient": statistics.mean(f for _, f in r),
        }
        for family, r in sorted(rows.items())
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="checkpoints")
    p.add_argument("-n", type=int, default=120, help="test samples, spread over the split")
    p.add_argument(
        "--families", default="train", help="the mix to draw from (a --scene-families mix or a family name)"
    )
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = score(args.model, args.n, args.families)
    print(f"Spearman of depth, bg == composite, {args.n} test samples of the mix {args.families!r}")
    print(f"{'family':<14} {'samples':>7} {'model':>7} {'floor gradient':>15}")
    for family, r in rows.items():
        print(f"{family:<14} {r['samples']:>7} {r['model']:>+7.3f} {r['floor gradient']:>+15.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

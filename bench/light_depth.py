"""How much the training data's brightness says about depth: a shortcut a model can learn.

    .venv/bin/python -m bench.light_depth [--families train-studio | room,studio] [-n 60] [--recipes v3,v4]

For each scene family, ``-n`` samples spread over its test split (100 x 100 x 20 at 120x160, as
the mix draws them, with each two-shot recipe): the Spearman rank correlation of the composite's
brightness (mean of R, G, B) with its depth (near = 1), over the pixels with a depth, averaged
over the samples. +1: nearer is always brighter; 0: brightness says nothing about depth. Beside
them, the same correlation on the real scenes of bench/real_depth.py (brightness with measured
disparity). Read beside bench/light_probe.py: where the data hardly lean (BENCHMARKS, stage O:
|r| <= 0.32 in every family) and the models still follow a light ramp, what they react to is the
layout of light over the picture, not per-pixel brightness. Data only, no model.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from bench.real_depth import available, rank_corr
from maskdepth.data import spread
from maskdepth.data.families import MIXES, resolve
from maskdepth.data.synthetic import SyntheticScenes
from maskdepth.data.transforms import split_dataset
from maskdepth.data.twoshot import RECIPES


def family_lean(family: str, recipe: str, n: int) -> float:
    """Mean Spearman of brightness with depth over ``n`` test samples of one family."""
    ds = SyntheticScenes(100, 100, 20, size=(120, 160), families=[family], two_shot=RECIPES[recipe])
    _, test = split_dataset(ds, 0.3, seed=0)
    out = []
    for i in spread(list(test.indices), n):
        s = ds[i]
        depth = s["depth"][0].numpy()
        out.append(rank_corr(s["fg_bg"].mean(0).numpy(), np.where(depth > 0, depth, np.nan)))
    return statistics.mean(out)


def real_lean() -> dict[str, float]:
    """Scene -> Spearman of the photo's brightness with its measured disparity."""
    out = {}
    for name, load in available().items():
        photo, disp = load()
        out[name] = rank_corr(photo.mean(-1), disp)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--families", default="train-studio", help="a --scene-families mix or family names, comma-separated"
    )
    p.add_argument("-n", type=int, default=60, help="samples per family")
    p.add_argument("--recipes", default="v3,v4", help="two-shot recipes, comma-separated")
    args = p.parse_args(argv)
    recipes = args.recipes.split(",")
    names, _ = resolve(args.families if args.families in MIXES else args.families.split(","))
    print(f"Spearman of brightness with depth, {args.n} test samples per family")
    print(f"{'family':<14}" + "".join(f"{r:>9}" for r in recipes))
    for name in names:
        print(f"{name:<14}" + "".join(f"{family_lean(name, r, args.n):>+9.3f}" for r in recipes))
    for scene, r in real_lean().items():
        print(f"{scene + ' (real)':<14}{r:>+9.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

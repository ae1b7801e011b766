"""What the Predict tab's six examples should show: the model's scores on each, against the known truth.

    .venv/bin/python -m bench.examples_quality [--model checkpoints]

For every pair in ``examples/`` (examples/make_examples.py), through ``Predictor`` at its
default resolution (what the app and the CLI run): the mask IoU against the true mask (the
generator's mask for the synthetic scenes, the cut-out's alpha > 0.5 for the photos) and, for
the synthetic scenes, whose depth is known, depth δ<1.25 and the Spearman rank correlation.
Prints a Markdown table (README.md "Examples: what to expect").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

from make_examples import SYNTHETIC_SAMPLES, SYNTHETIC_SEED, real_pastes  # noqa: E402

from bench.depth_view import depth_scores  # noqa: E402
from bench.predict_quality import iou  # noqa: E402
from maskdepth.predict.predictor import Predictor  # noqa: E402


def truths() -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """name -> (true mask (H, W) bool, true depth (H, W) or None)."""
    from maskdepth.data.synthetic import SyntheticScenes

    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    scenes = SyntheticScenes(backgrounds=100, foregrounds=100, positions=20, size=224, seed=SYNTHETIC_SEED)
    for n, index in enumerate(SYNTHETIC_SAMPLES, start=1):
        s = scenes[index]
        out[f"synthetic_{n}"] = (s["mask"][0].numpy() > 0.5, s["depth"][0].numpy())
    for name, bg, obj, (x, y) in real_pastes():
        alpha = np.zeros((bg.height, bg.width), np.float32)
        alpha[y : y + obj.height, x : x + obj.width] = np.asarray(obj, np.float32)[..., 3] / 255
        out[name] = (alpha > 0.5, None)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "checkpoints"))
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    predictor = Predictor.from_source(args.model)
    folder = ROOT / "examples"
    print("| example | mask IoU | depth δ<1.25 | depth Spearman |\n|---|---|---|---|")
    for name, (mask, depth) in truths().items():
        ext = "png" if name.startswith("synthetic") else "jpg"
        pred = predictor.predict(folder / f"{name}_fg_bg.{ext}", folder / f"{name}_bg.{ext}")
        cells = ["-", "-"]
        if depth is not None:
            delta, rho = depth_scores(pred.depth, depth)
            cells = [f"{delta:.3f}", f"{rho:+.3f}"]
        print(f"| {name.replace('_', ' ')} | {iou(pred.mask > 0.5, mask):.3f} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does the model read brightness as depth? The real_depth scenes under changes of light alone.

    .venv/bin/python -m bench.light_probe [--model checkpoints]

Each whole photo of bench/real_depth.py (bg == composite) is predicted as it is and with its light
changed, nothing else: darker (x0.6), brighter (x1.4), grey, and a left-to-right light ramp
(x0.5 at the left edge to x1.3 at the right). Printed per variant: the Spearman of predicted depth
with the measured disparity, and for the ramp the rank correlation of the depth's change (column
means, against the photo as it is) with the column: near +1 means the depth follows the light.
A model that ranks by geometry moves little under any of them.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.stats import spearmanr

from bench.real_depth import available, greyed, rank_corr
from maskdepth.predict import Predictor


def variants(photo: np.ndarray) -> dict[str, np.ndarray]:
    """The photo (uint8) as float in 0..1, and with only its light changed (values over 1 are clipped when saved)."""
    base = photo.astype(np.float32) / 255
    ramp = np.linspace(0.5, 1.3, base.shape[1], dtype=np.float32)[None, :, None]
    return {
        "as is": base,
        "darker x0.6": base * 0.6,
        "brighter x1.4": base * 1.4,
        "grey": greyed(base),
        "light ramp L->R": base * ramp,
    }


def score(model: str) -> dict[str, dict[str, float]]:
    """scene -> {variant: Spearman, "ramp follows": rank correlation of the depth change with x}."""
    predictor = Predictor.from_source(model)
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo.png"
        for scene, load in available().items():
            photo, disp = load()
            row, depth = {}, {}
            for name, img in variants(photo).items():
                Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).save(path)
                depth[name] = predictor.predict(path, path).depth
                row[name] = rank_corr(depth[name], disp)
            change = (depth["light ramp L->R"] - depth["as is"]).mean(0)
            row["ramp follows"] = float(spearmanr(change, np.arange(change.size)).statistic)
            out[scene] = row
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="checkpoints")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = score(args.model)
    cols = list(next(iter(rows.values())))
    print("Spearman with measured disparity under changes of light (whole photos, bg == composite)")
    print(f"{'scene':<12} " + " ".join(f"{c:>15}" for c in cols))
    for scene, row in rows.items():
        print(f"{scene:<12} " + " ".join(f"{row[c]:>+15.3f}" for c in cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Depth on a real scene with measured depth, given as bg == composite (nothing pasted).

    .venv/bin/python -m bench.real_depth [--model checkpoints] [--resolutions 128,256,512]

The scene is Middlebury's "motorcycle" stereo pair as scikit-image ships it
(``skimage.data.stereo_motorcycle``: the left photo, 741x500, and its disparity from
structured light). Disparity is proportional to 1 / z, so it ranks pixels the way the
project's depth does (DEPTH_CONVENTION: near = 1, far = 0, 1 / z): a model whose depth is
right has a Spearman rank correlation of +1 with it over the pixels with a disparity.

Besides the whole photo, four crops of it (different aspect ratios and content) are scored,
so one lucky layout does not carry the result. For each working resolution: the share of
pixels the mask calls foreground (prediction > 0.5; nothing was pasted, so it should be ~0)
and the Spearman correlation of predicted depth with the disparity. Beside the model, a
"floor gradient" baseline (depth = row index: lower is nearer) shows what a model that only
learned "the bottom of the picture is near" would score. Prints a table; --out writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.stats import spearmanr

from maskdepth.predict import Predictor

ROOT = Path(__file__).resolve().parent.parent

# (name, top, left, height, width) in the 500x741 left photo; None = the whole photo.
CROPS = [
    ("whole", None),
    ("left half", (0, 0, 500, 370)),
    ("right half", (0, 371, 500, 370)),
    ("top band", (0, 0, 250, 741)),
    ("centre", (100, 150, 320, 440)),
]


def scene() -> tuple[np.ndarray, np.ndarray]:
    """The left photo (H, W, 3) uint8 and its disparity (H, W) float32, NaN where unknown."""
    from skimage.data import stereo_motorcycle

    left, _right, disp = stereo_motorcycle()
    disp = np.where(np.isfinite(disp) & (disp > 0), disp, np.nan).astype(np.float32)
    return left, disp


def rank_corr(pred: np.ndarray, disp: np.ndarray) -> float:
    valid = np.isfinite(disp)
    return float(spearmanr(pred[valid], disp[valid]).statistic)


def views(folder: Path) -> list[tuple[str, Path, np.ndarray]]:
    """(name, PNG path, disparity) of each view in CROPS, written into ``folder``."""
    photo, disp = scene()
    out = []
    for name, box in CROPS:
        img, d = (photo, disp) if box is None else _crop(photo, disp, box)
        path = folder / f"{name.replace(' ', '_')}.png"
        Image.fromarray(img).save(path)
        out.append((name, path, d))
    return out


def score_predictor(predictor: Predictor) -> float:
    """Mean Spearman over the views at the predictor's own settings."""
    with tempfile.TemporaryDirectory() as tmp:
        return statistics.mean(rank_corr(predictor.predict(p, p).depth, d) for _, p, d in views(Path(tmp)))


def score(model: str, resolutions: list[int]) -> dict:
    predictor = Predictor.from_source(model)
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        scenes = views(Path(tmp))
        rows["floor gradient"] = {
            "spearman": {n: rank_corr(np.indices(d.shape)[0].astype(np.float32), d) for n, _, d in scenes}
        }
        for res in resolutions:
            predictor.resolution = res
            corr, fg = {}, {}
            for name, path, d in scenes:
                pred = predictor.predict(path, path)  # bg == composite: nothing pasted
                corr[name] = rank_corr(pred.depth, d)
                fg[name] = float((pred.mask > 0.5).mean())
            rows[f"{res} px"] = {"resolution": res, "spearman": corr, "mask_fraction": fg}
    for row in rows.values():
        row["mean_spearman"] = statistics.mean(row["spearman"].values())
        if "mask_fraction" in row:
            row["max_mask_fraction"] = max(row["mask_fraction"].values())
    return rows


def _crop(photo: np.ndarray, disp: np.ndarray, box: tuple[int, int, int, int]):
    top, left, h, w = box
    return photo[top : top + h, left : left + w], disp[top : top + h, left : left + w]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "checkpoints"))
    p.add_argument("--resolutions", default="128,256,512")
    p.add_argument("--out", help="write the rows as JSON here")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = score(args.model, [int(r) for r in args.resolutions.split(",")])
    names = [n for n, _ in CROPS]
    print("Spearman of predicted depth with measured disparity (motorcycle, bg == composite)")
    print(f"{'method':<16} " + " ".join(f"{n:>11}" for n in names) + f" {'mean':>7} {'max mask':>9}")
    for method, row in rows.items():
        cells = " ".join(f"{row['spearman'][n]:>+11.3f}" for n in names)
        fg = f"{row['max_mask_fraction']:>9.2%}" if "max_mask_fraction" in row else ""
        print(f"{method:<16} {cells} {row['mean_spearman']:>+7.3f} {fg}")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

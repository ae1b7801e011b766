"""Depth on real scenes with measured depth, given as bg == composite (nothing pasted).

    .venv/bin/python -m bench.real_depth [--model checkpoints] [--resolutions 128,256,512] [--grey]
        [--out NOW.json] [--against EARLIER.json]

Two Middlebury stereo scenes, each the left photo and its disparity from structured light, as
installed packages ship them:

- ``motorcycle``: a garage (a motorcycle before shelves and a bench on a concrete floor), 741x500,
  ``skimage.data.stereo_motorcycle`` (scikit-image, a test requirement);
- ``aloe``: an aloe plant in a clay pot before a patterned cloth, 1282x1110 (Middlebury 2006;
  Scharstein and Pal, CVPR 2007; the motorcycle is Middlebury 2014), from the OpenCV
  samples of Debian's ``opencv-doc`` package (``apt-get install opencv-doc``; without it the scene
  is left out and the table says so).

Disparity is proportional to 1 / z, so it ranks pixels the way the project's depth does
(DEPTH_CONVENTION: near = 1, far = 0, 1 / z): a model whose depth is right has a Spearman rank
correlation of +1 with it over the pixels with a disparity.

Besides each whole photo, four crops of it (different aspect ratios and content) are scored,
so one lucky layout does not carry the result. For each working resolution: the share of
pixels the mask calls foreground (prediction > 0.5; nothing was pasted, so it should be ~0)
and the Spearman correlation of predicted depth with the disparity. Beside the model, a
"floor gradient" baseline (depth = row index: lower is nearer) shows what a model that only
learned "the bottom of the picture is near" would score. Prints a table; --out writes JSON.
``--grey`` predicts every view made grey (the mean of its channels): how much the model's depth
leans on colour. ``--against`` takes an earlier run's ``--out`` JSON and prints, per resolution, this
run minus that one view by view: the mean difference, its standard error and on how many views it is
higher (the views of one photo overlap, so read the standard error as a lower bound).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.stats import spearmanr

from maskdepth.predict.predictor import Predictor

ROOT = Path(__file__).resolve().parent.parent
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")

# (name, (top, left, height, width) as fractions of the photo); None = the whole photo.
# Cut as int(fraction * side), right-edge boxes from the right: on the motorcycle these are the
# pixel boxes of the first version (one scene), so its numbers are unchanged.
CROPS = [
    ("whole", None),
    ("left half", (0.0, 0.0, 1.0, 0.5)),
    ("right half", (0.0, 0.5, 1.0, 0.5)),
    ("top band", (0.0, 0.0, 0.5, 1.0)),
    ("centre", (0.2, 0.2025, 0.64, 0.594)),
]


def motorcycle() -> tuple[np.ndarray, np.ndarray]:
    """The left photo (H, W, 3) uint8 and its disparity (H, W) float32, NaN where unknown."""
    from skimage.data import stereo_motorcycle

    left, _right, disp = stereo_motorcycle()
    disp = np.where(np.isfinite(disp) & (disp > 0), disp, np.nan).astype(np.float32)
    return left, disp


def aloe() -> tuple[np.ndarray, np.ndarray]:
    """Middlebury's aloe as OpenCV's samples ship it (aloeL.jpg, aloeGT.png: 0 = unknown)."""
    photo = np.asarray(Image.open(OPENCV_DATA / "aloeL.jpg").convert("RGB"))
    disp = np.asarray(Image.open(OPENCV_DATA / "aloeGT.png").convert("L")).astype(np.float32)
    return photo, np.where(disp > 0, disp, np.nan).astype(np.float32)


# name -> (loader, what to install when it is missing)
SCENES: dict[str, tuple[Callable[[], tuple[np.ndarray, np.ndarray]], str]] = {
    "motorcycle": (motorcycle, "pip install scikit-image"),
    "aloe": (aloe, "apt-get install opencv-doc"),
}


def available() -> dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]]:
    """The scenes whose files are here; a note on stderr names how to get each missing one."""
    out = {}
    for name, (load, fix) in SCENES.items():
        try:
            load()
        except (OSError, ImportError) as exc:
            print(f"real_depth: scene {name!r} left out ({exc}); to score it: {fix}", file=sys.stderr)
            continue
        out[name] = load
    return out


def rank_corr(pred: np.ndarray, disp: np.ndarray) -> float:
    valid = np.isfinite(disp)
    return float(spearmanr(pred[valid], disp[valid]).statistic)


def greyed(photo: np.ndarray) -> np.ndarray:
    """The photo (H, W, 3) as the mean of its channels in all three, its dtype kept (integers rounded)."""
    mean = photo.mean(-1, keepdims=True)
    if np.issubdtype(photo.dtype, np.integer):
        mean = mean.round()
    return np.repeat(mean, 3, -1).astype(photo.dtype)


def crop_box(shape: tuple[int, ...], box: tuple[float, float, float, float]) -> tuple[slice, slice]:
    """The rows and columns of a fractional (top, left, height, width) box in an image of ``shape``."""
    h, w = shape[:2]
    top, left, bh, bw = box
    ch, cw = int(bh * h), int(bw * w)
    t = int(top * h)
    c = w - cw if left + bw >= 1 else int(left * w)  # a box that reaches the right edge is cut from it
    return slice(t, t + ch), slice(c, c + cw)


def views(
    folder: Path, scenes: dict | None = None, grey: bool = False
) -> list[tuple[str, str, Path, np.ndarray]]:
    """(scene, view, PNG path, disparity) of each view in CROPS of each scene, written into ``folder``
    (``grey``: each view as the mean of its channels, in RGB)."""
    out = []
    for scene, load in (available() if scenes is None else scenes).items():
        photo, disp = load()
        if grey:
            photo = greyed(photo)
        for name, box in CROPS:
            rows, cols = (slice(None), slice(None)) if box is None else crop_box(photo.shape, box)
            path = folder / f"{scene}_{name.replace(' ', '_')}.png"
            Image.fromarray(np.ascontiguousarray(photo[rows, cols])).save(path)
            out.append((scene, name, path, disp[rows, cols]))
    return out


def score_predictor(predictor: Predictor) -> float:
    """Mean Spearman over every view of every scene here, at the predictor's own settings."""
    with tempfile.TemporaryDirectory() as tmp:
        return statistics.mean(rank_corr(predictor.predict(p, p).depth, d) for *_, p, d in views(Path(tmp)))


def _summarise(row: dict) -> dict:
    corr = row["spearman"]
    row["scene_mean"] = {s: statistics.mean(v.values()) for s, v in corr.items()}
    row["mean_spearman"] = statistics.mean(r for v in corr.values() for r in v.values())
    if "mask_fraction" in row:
        row["max_mask_fraction"] = max(f for v in row["mask_fraction"].values() for f in v.values())
    return row


def score(model: str, resolutions: list[int], grey: bool = False) -> dict:
    """Rows "floor gradient" and "<res> px": spearman[scene][view], mask_fraction likewise, and means."""
    predictor = Predictor.from_source(model)
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        items = views(Path(tmp), grey=grey)
        floor: dict[str, dict[str, float]] = {}
        for scene, name, _, d in items:
            floor.setdefault(scene, {})[name] = rank_corr(np.indices(d.shape)[0].astype(np.float32), d)
        rows["floor gradient"] = _summarise({"spearman": floor})
        for res in resolutions:
            predictor.resolution = res
            corr: dict[str, dict[str, float]] = {}
            fg: dict[str, dict[str, float]] = {}
            for scene, name, path, d in items:
                pred = predictor.predict(path, path)  # bg == composite: nothing pasted
                corr.setdefault(scene, {})[name] = rank_corr(pred.depth, d)
                fg.setdefault(scene, {})[name] = float((pred.mask > 0.5).mean())
            rows[f"{res} px"] = _summarise({"resolution": res, "spearman": corr, "mask_fraction": fg})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "checkpoints"))
    p.add_argument("--resolutions", default="128,256,512")
    p.add_argument("--grey", action="store_true", help="predict every view made grey")
    p.add_argument("--out", help="write the rows as JSON here")
    p.add_argument("--against", help="an earlier --out JSON: print this run minus that one, view by view")
    args = p.parse_args(argv)
    before = read_earlier(p, args.against) if args.against else None  # before the minutes of scoring
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = score(args.model, [int(r) for r in args.resolutions.split(",")], grey=args.grey)
    names = [n for n, _ in CROPS]
    scenes = list(rows["floor gradient"]["spearman"])
    print(f"Spearman of predicted depth with measured disparity (bg == composite): {', '.join(scenes)}")
    for scene in scenes:
        print(f"\n{scene:<16} " + " ".join(f"{n:>11}" for n in names) + f" {'mean':>7} {'max mask':>9}")
        for method, row in rows.items():
            cells = " ".join(f"{row['spearman'][scene][n]:>+11.3f}" for n in names)
            fg = f"{max(row['mask_fraction'][scene].values()):>9.2%}" if "mask_fraction" in row else ""
            print(f"{method:<16} {cells} {row['scene_mean'][scene]:>+7.3f} {fg}")
    print(f"\n{'all views':<16} " + " ".join(f"{m:>15}" for m in rows))
    print(f"{'mean Spearman':<16} " + " ".join(f"{r['mean_spearman']:>+15.3f}" for r in rows.values()))
    if before is not None:
        print(against(rows, before, args.against))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def read_earlier(parser: argparse.ArgumentParser, path: str) -> dict:
    """An earlier run's ``--out`` JSON, or a one-line error naming the file (argparse exits with 2)."""
    try:
        rows = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        parser.error(f"--against {path}: cannot read it ({exc}); give a JSON file that --out wrote")
    if not isinstance(rows, dict) or not all(isinstance(r, dict) and "spearman" in r for r in rows.values()):
        parser.error(
            f"--against {path}: not a bench.real_depth --out file (no Spearman rows); give one that --out wrote"
        )
    return rows


def against(now: dict, before: dict, name: str) -> str:
    """Per resolution in both runs: the mean of now - before over the views they share, its standard error, wins."""
    lines = [f"\nthis run - {name}, view by view:"]
    for method in (m for m in now if m in before and m != "floor gradient"):
        a, b = now[method]["spearman"], before[method]["spearman"]
        diffs = [a[s][v] - b[s][v] for s in a if s in b for v in a[s] if v in b[s]]
        if len(diffs) < 2:
            continue
        se = statistics.stdev(diffs) / len(diffs) ** 0.5
        higher = sum(d > 0 for d in diffs)
        lines.append(
            f"{method:<16} {statistics.mean(diffs):+.3f} (standard error {se:.3f}), higher on {higher} of {len(diffs)}"
        )
    return "\n".join(lines) if len(lines) > 1 else f"\n{name} shares no resolution with this run"


if __name__ == "__main__":
    raise SystemExit(main())

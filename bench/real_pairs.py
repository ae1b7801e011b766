"""Held-out real photos as two separate shots, scored through ``python -m maskdepth predict`` at its defaults.

    .venv/bin/python -m bench.real_pairs [--kind tripod|handheld|exact] [--square N] [--model checkpoints]
        [--draws N] [--resolution R] [--keep DIR] [--out F] [--against EARLIER.json]

A check the training never saw in any form: the photos are the ones Gradio ships
(``gradio/media_assets/images``: cheetah, groot, lion, tower, the Hugging Face logo); the
project's textures, examples and check set use scikit-image's photos only. Objects are cut
from those photos (ellipses, a polygon, the logo's own soft alpha) and pasted at several
sizes into non-square backgrounds. Each pair is then made into two shots by code written
apart from the training generator (``maskdepth.data.twoshot``), with other distributions:
per shot an exposure and gamma change, white balance, a Gaussian blur, sensor noise and a
PIL JPEG at quality 55-92; the background shot is moved by up to 1.5 px and turned by up to
0.3 deg; the composite gets a soft shadow of the object, offset and squashed (not part of the
mask).

``--kind handheld`` makes the background a second handheld shot instead
(:func:`maskdepth.data.handheld.handheld_shot`: the camera turned up to 3 deg, moved up to 4% of the
frame, zoomed up to 4%, a little perspective, its own exposure, noise and JPEG), the case the
predictor's registration is for. ``--kind exact`` pastes the object pixel-exactly into the photo
itself (the seed's data: no second shot, no shadow), at full size or, with ``--square N``, into an
N x N centre crop.

The pairs go through the CLI at its defaults (subprocess: ``predict --image fg_bg --bg bg``),
and the mask IoU (prediction > 0.5 vs the cut-out's alpha > 0.5) is printed per pair, with two
pixel-difference baselines on the same pairs: ``max |fg_bg - bg| > 8`` and the same after a
Gaussian blur (sigma 2) of both images with threshold 24. ``--against`` takes an earlier run's
``--out`` (another model, same --draws) and prints the pair-by-pair difference of the two models
(the same pairs, so their difficulty cancels) with a 95% interval over the ten pastes.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from bench.predict_quality import iou
from maskdepth.compare.stats import interval
from maskdepth.data.handheld import handheld_shot
from maskdepth.imageio import rgb_tile

ROOT = Path(__file__).resolve().parent.parent
MODEL = "model (CLI defaults)"  # the model's row (its key in --out JSON)
PHOTOS = Path(importlib.util.find_spec("gradio").origin).parent / "media_assets" / "images"


def photo(name: str) -> Image.Image:
    return Image.open(PHOTOS / name)


def backgrounds() -> dict[str, Image.Image]:
    """Non-square backgrounds (w x h in the comments)."""
    return {
        "cheetah": photo("cheetah.jpg").convert("RGB"),  # 502x343
        "groot": photo("groot.jpeg").convert("RGB"),  # 910x512, 16:9
        "tower": photo("tower.jpg").convert("RGB"),  # 377x600, portrait
        "lion": photo("lion.jpg").convert("RGB").crop((0, 40, 256, 232)),  # 256x192, 4:3
    }


def _alpha_cut(img: Image.Image, box: tuple[int, int, int, int], shape: str) -> Image.Image:
    """An RGBA cut-out of ``box`` with an anti-aliased ellipse or diamond alpha."""
    crop = img.convert("RGB").crop(box)
    w, h = crop.size
    big = Image.new("L", (4 * w, 4 * h), 0)
    draw = ImageDraw.Draw(big)
    if shape == "ellipse":
        draw.ellipse((0, 0, 4 * w - 1, 4 * h - 1), fill=255)
    else:
        draw.polygon([(2 * w, 0), (4 * w, 2 * h), (2 * w, 4 * h), (0, 2 * h)], fill=255)
    crop.putalpha(big.resize((w, h), Image.LANCZOS))
    return crop


def objects() -> dict[str, Image.Image]:
    return {
        "logo": photo("hf-logo_transpng.png").convert("RGBA"),  # its own soft alpha
        "lion_face": _alpha_cut(photo("lion.jpg"), (50, 10, 160, 130), "ellipse"),
        "cheetah_face": _alpha_cut(photo("cheetah1.jpg"), (40, 20, 220, 230), "ellipse"),
        "groot_face": _alpha_cut(photo("groot.jpeg"), (330, 0, 600, 300), "ellipse"),
        "tower_top": _alpha_cut(photo("tower.jpg"), (100, 40, 280, 300), "diamond"),
    }


# (name, background, object, long side as a fraction of the background's short side, (x, y) in [0, 1])
PAIRS = [
    ("cheetah_logo", "cheetah", "logo", 0.45, (0.8, 0.2)),
    ("cheetah_lion", "cheetah", "lion_face", 0.35, (0.1, 0.6)),
    ("groot_cheetah", "groot", "cheetah_face", 0.4, (0.15, 0.5)),
    ("groot_tower", "groot", "tower_top", 0.5, (0.85, 0.3)),
    ("tower_logo", "tower", "logo", 0.4, (0.3, 0.8)),
    ("tower_groot", "tower", "groot_face", 0.45, (0.6, 0.15)),
    ("lion_logo", "lion", "logo", 0.35, (0.05, 0.05)),
    ("lion_cheetah", "lion", "cheetah_face", 0.3, (0.9, 0.9)),
    ("cheetah_groot", "cheetah", "groot_face", 0.25, (0.5, 0.1)),
    ("groot_lion", "groot", "lion_face", 0.3, (0.5, 0.9)),
]


def paste(bg: Image.Image, obj: Image.Image, size: float, at: tuple[float, float]):
    """(composite RGB, object alpha (H, W) float in [0, 1]) with the object pasted into ``bg``."""
    scale = size * min(bg.size) / max(obj.size)
    obj = obj.resize((max(1, round(obj.width * scale)), max(1, round(obj.height * scale))), Image.LANCZOS)
    x, y = round(at[0] * (bg.width - obj.width)), round(at[1] * (bg.height - obj.height))
    out = bg.copy()
    out.paste(obj, (x, y), obj)
    alpha = np.zeros((bg.height, bg.width), np.float32)
    alpha[y : y + obj.height, x : x + obj.width] = np.asarray(obj, np.float32)[..., 3] / 255
    return out, alpha


def shadow(img: Image.Image, alpha: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Darken a blurred copy of the object's alpha, moved down-right and squashed, outside the object."""
    h, w = alpha.shape
    dx, dy = rng.uniform(0.02, 0.06) * w, rng.uniform(0.02, 0.05) * h
    a = Image.fromarray((alpha * 255).astype(np.uint8)).transform(
        (w, h), Image.AFFINE, (1, 0.3, -dx, 0, 1.25, -dy), Image.BILINEAR
    )
    soft = np.asarray(a.filter(ImageFilter.GaussianBlur(rng.uniform(2, 6))), np.float32) / 255
    strength = rng.uniform(0.25, 0.45) * soft * (1 - alpha)
    return Image.fromarray((np.asarray(img, np.float32) * (1 - strength[..., None])).astype(np.uint8))


def shoot(img: Image.Image, rng: np.random.Generator, move: bool) -> Image.Image:
    """One camera shot of ``img``: pose (if ``move``), exposure, white balance, blur, noise, JPEG."""
    if move:
        dx, dy = rng.uniform(-1.5, 1.5, 2)
        img = img.rotate(rng.uniform(-0.3, 0.3), Image.BICUBIC, translate=(dx, dy), fillcolor=None)
    x = np.asarray(img, np.float32) / 255
    x = np.clip(x * 2 ** rng.uniform(-0.35, 0.35), 0, 1) ** rng.uniform(0.9, 1.1)
    x = np.clip(x * rng.uniform(0.94, 1.06, 3), 0, 1)
    shot = Image.fromarray((x * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.8)))
    x = np.asarray(shot, np.float32) + rng.normal(0, rng.uniform(1, 5), (img.height, img.width, 3))
    shot = Image.fromarray(np.clip(x, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    shot.save(buf, "JPEG", quality=int(rng.integers(55, 93)))
    return Image.open(buf).convert("RGB")


def square(img: Image.Image, side: int) -> Image.Image:
    """The centre square of ``img`` resized to ``side`` x ``side``."""
    d = min(img.size)
    x, y = (img.width - d) // 2, (img.height - d) // 2
    return img.crop((x, y, x + d, y + d)).resize((side, side), Image.LANCZOS)


def make_pair(bg: Image.Image, comp: Image.Image, alpha: np.ndarray, rng: np.random.Generator, kind: str):
    """(background shot, composite shot) of one paste for a kind of check (see the module docstring)."""
    if kind == "exact":
        return bg, comp
    if kind == "handheld":
        shot, _ = handheld_shot(np.asarray(bg), rng)
        background = Image.fromarray(rgb_tile(shot))
    else:
        background = shoot(bg, rng, move=True)
    return background, shoot(shadow(comp, alpha, rng), rng, move=False)


def write(folder: Path, draw: int = 0, kind: str = "tripod", side: int = 0) -> list[str]:
    """The pairs into folder/bg, folder/fg_bg, folder/mask (PNG; the shots are JPEG-degraded).

    ``draw`` 0 is the fixed set of PAIRS; draw d >= 1 makes the same ten pastes again with the
    size scaled by 0.8-1.2, the position moved by up to 0.15 and new shots (names end in ``_d``),
    to show how much the mean moves with the layout and the shots.
    """
    for sub in ("bg", "fg_bg", "mask"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    bgs, objs = backgrounds(), objects()
    names = []
    for k, (name, b, o, size, at) in enumerate(PAIRS):
        rng = np.random.default_rng([2026, k] if draw == 0 else [2026, k, draw])
        if draw:
            name, size = f"{name}_d{draw}", size * rng.uniform(0.8, 1.2)
            at = tuple(float(np.clip(a + rng.uniform(-0.15, 0.15), 0, 1)) for a in at)
        photo = square(bgs[b], side) if side else bgs[b]
        comp, alpha = paste(photo, objs[o], size, at)
        background, composite = make_pair(photo, comp, alpha, rng, kind)
        background.save(folder / "bg" / f"{name}.png")
        composite.save(folder / "fg_bg" / f"{name}.png")
        Image.fromarray(((alpha > 0.5) * 255).astype(np.uint8)).save(folder / "mask" / f"{name}.png")
        names.append(name)
    return names


def baselines(folder: Path, name: str) -> dict[str, np.ndarray]:
    a, b = (Image.open(folder / sub / f"{name}.png").convert("RGB") for sub in ("fg_bg", "bg"))
    diff = np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max(axis=2)
    blur = [np.asarray(x.filter(ImageFilter.GaussianBlur(2)), np.int16) for x in (a, b)]
    return {"pixel difference": diff > 8, "blurred difference": np.abs(blur[0] - blur[1]).max(axis=2) > 24}


def score(
    model: str, folder: Path, names: list[str], resolution: str | None = None, align: str = "on"
) -> dict[str, dict[str, float]]:
    """IoU per pair of the CLI's masks (at its defaults, or at ``resolution``) and of the baselines."""
    out = folder / "out"
    cmd = [sys.executable, "-m", "maskdepth", "predict", "--model", model]
    cmd += ["--image", str(folder / "fg_bg"), "--bg", str(folder / "bg"), "--out", str(out)]
    cmd += ["--resolution", resolution] if resolution else []
    cmd += ["--align", align]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    rows: dict[str, dict[str, float]] = {
        MODEL: {},
        "pixel difference": {},
        "blurred difference": {},
    }
    for n in names:
        truth = np.asarray(Image.open(folder / "mask" / f"{n}.png")) > 127
        rows[MODEL][n] = iou(np.asarray(Image.open(out / n / "mask.png")) > 127, truth)
        for method, pred in baselines(folder, n).items():
            rows[method][n] = iou(pred, truth)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--kind", choices=("tripod", "handheld", "exact"), default="tripod", help="see the docstring"
    )
    p.add_argument("--square", type=int, default=0, help="paste into an N x N centre crop of each photo")
    p.add_argument("--model", default=str(ROOT / "checkpoints"))
    p.add_argument("--align", choices=("on", "off"), default="on", help="the CLI's --align (default: on)")
    p.add_argument("--keep", help="write the pairs (and the CLI's outputs) here instead of a temp dir")
    p.add_argument("--draws", type=int, default=1, help="also score this many - 1 redrawn sets (see write)")
    p.add_argument("--resolution", help="the CLI's --resolution (default: its own default, balanced)")
    p.add_argument("--out", help="write the per-pair IoUs as JSON here")
    p.add_argument("--against", help="an earlier --out JSON: print this model minus that one, pair by pair")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        sets = [write(folder, d, args.kind, args.square) for d in range(max(1, args.draws))]
        rows = score(args.model, folder, [n for names in sets for n in names], args.resolution, args.align)
    names = sets[0]
    at = f"--resolution {args.resolution}" if args.resolution else "CLI defaults"
    at += ", --align off" if args.align == "off" else ""
    what = {"tripod": "two shots from one spot", "handheld": "two handheld shots", "exact": "exact pastes"}
    shape = f", {args.square}x{args.square}" if args.square else ""
    print(
        f"mask IoU, {len(names)} held-out real-photo pairs, {what[args.kind]}{shape} (bench/real_pairs.py, {at})"
    )
    print(f"{'pair':<16} " + " ".join(f"{m:>21}" for m in rows))
    for n in names:
        print(f"{n:<16} " + " ".join(f"{rows[m][n]:>21.3f}" for m in rows))
    print(
        f"{'mean':<16} " + " ".join(f"{statistics.mean(r[n] for n in names):>21.3f}" for r in rows.values())
    )
    print(f"{'min':<16} " + " ".join(f"{min(r[n] for n in names):>21.3f}" for r in rows.values()))
    if len(sets) > 1:
        print(f"\nmean IoU of each of {len(sets)} draws of the {len(names)} pastes (draw 0: the table above)")
        for m, r in rows.items():
            means = [statistics.mean(r[n] for n in drawn) for drawn in sets]
            print(
                f"{m:<21} "
                + " ".join(f"{x:.3f}" for x in means)
                + f"   all {len(r)}: {statistics.mean(r.values()):.3f}, spread of draws (sd) {statistics.stdev(means):.3f}"
            )
    if args.against:
        print(against(rows[MODEL], json.loads(Path(args.against).read_text())[MODEL], args.against))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def against(now: dict[str, float], before: dict[str, float], name: str) -> str:
    """The mean IoU difference now - before, pair by pair, with its 95% interval and the wins.

    The redrawn pairs of one paste (``_d`` names) are not independent of each other, so the interval
    is taken over the pastes (each paste's difference averaged over its draws), not over the pairs.
    """
    common = [n for n in now if n in before]
    diffs = {n: now[n] - before[n] for n in common}
    by_paste: dict[str, list[float]] = {}
    for n, d in diffs.items():
        by_paste.setdefault(n.rsplit("_d", 1)[0], []).append(d)  # PAIRS' names hold no "_d" of their own
    stat = interval([statistics.mean(ds) for ds in by_paste.values()])
    if stat["low"] is None:
        return f"\n{name} shares {len(common)} of these pairs: run it with the same --draws"
    wins = sum(d > 0.005 for d in diffs.values())
    losses = sum(d < -0.005 for d in diffs.values())
    return (
        f"\nthis model - {name}: {stat['mean']:+.3f} over {len(common)} pairs (95% interval over the "
        f"{len(by_paste)} pastes, each averaged over its draws: {stat['low']:+.3f} .. {stat['high']:+.3f}); "
        f"better on {wins} pairs, worse on {losses} (by more than 0.005)"
    )


if __name__ == "__main__":
    raise SystemExit(main())

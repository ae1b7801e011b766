"""A real-photo check set: non-square photos with a cut-out pasted in, and the true mask.

    .venv/bin/python examples/checkset.py OUT_DIR

writes ``OUT_DIR/bg/<name>.png``, ``OUT_DIR/fg_bg/<name>.png`` and ``OUT_DIR/mask/<name>.png``
(the folder layout ``python -m maskdepth predict --image OUT_DIR/fg_bg --bg OUT_DIR/bg`` reads).
Every photo ships with scikit-image (``skimage/data/``, terms in examples/LICENSES.md); the
backgrounds are non-square (3:2, 4:3, 16:9, portrait), the pastes exact (PNG, so the
background is pixel-identical outside the object) and the true mask is the cut-out's alpha
> 0.5. Deterministic: the same files every time. ``bench/predict_quality.py`` scores a model
on it; the pixel difference ``|fg_bg - bg| > 8`` is scored beside it as a baseline.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_examples import cut, ellipse_alpha, paste, skimage_photo  # noqa: E402


def _crop(name: str, box: tuple[int, int, int, int], size: tuple[int, int] | None = None) -> Image.Image:
    img = skimage_photo(name).crop(box)
    return img.resize(size, Image.LANCZOS) if size else img


def _backgrounds() -> dict[str, Image.Image]:
    """Non-square backgrounds: (w x h) in the comments."""
    return {
        "coffee": skimage_photo("coffee.png"),  # 600x400, 3:2
        "chelsea": skimage_photo("chelsea.png"),  # 451x300
        "rocket": skimage_photo("rocket.jpg"),  # 640x427
        "hubble": _crop("hubble_deep_field.jpg", (0, 100, 1000, 662)),  # 1000x562, 16:9
        "retina": _crop("retina.jpg", (0, 235, 1411, 1175)),  # 1411x940, 3:2
        "astronaut": _crop("astronaut.png", (0, 100, 512, 388)),  # 512x288, 16:9
        "coffee_portrait": skimage_photo("coffee.png").transpose(Image.Transpose.ROTATE_90),  # 400x600
        "brick": _crop("brick.png", (0, 0, 512, 384), (640, 480)),  # 640x480, 4:3, grey
        "camera": _crop("camera.png", (0, 56, 512, 456)),  # 512x400, grey
    }


def _polygon_alpha(side: int, points: list[tuple[float, float]]) -> np.ndarray:
    """(side, side) alpha: 1 inside the polygon (points as fractions of the side), 0 outside."""
    img = Image.new("L", (side, side), 0)
    ImageDraw.Draw(img).polygon([(x * side, y * side) for x, y in points], fill=255)
    return np.asarray(img, np.float32) / 255.0


def _star(n: int = 5) -> list[tuple[float, float]]:
    angles = np.arange(2 * n) * np.pi / n - np.pi / 2
    radii = np.where(np.arange(2 * n) % 2 == 0, 0.5, 0.22)
    return [(0.5 + r * np.cos(a), 0.5 + r * np.sin(a)) for a, r in zip(angles, radii, strict=True)]


def _card() -> list[tuple[float, float]]:
    """A photo print lying at an angle: a rotated rectangle."""
    c, s = np.cos(0.35), np.sin(0.35)
    corners = [(-0.4, -0.28), (0.4, -0.28), (0.4, 0.28), (-0.4, 0.28)]
    return [(0.5 + x * c - y * s, 0.5 + x * s + y * c) for x, y in corners]


def _objects() -> dict[str, Image.Image]:
    """RGBA cut-outs, natural size (scaled per paste)."""
    horse_alpha = 1.0 - np.asarray(skimage_photo("horse.png").convert("L"), np.float32) / 255.0
    return {
        "coin": cut(skimage_photo("coins.png"), (314, 152, 382, 220), ellipse_alpha(68, 68), 1.0),
        "cat": cut(skimage_photo("chelsea.png"), (40, 0, 410, 300), ellipse_alpha(300, 370), 1.0),
        "star": cut(skimage_photo("rocket.jpg"), (200, 100, 440, 340), _polygon_alpha(240, _star()), 1.0),
        "card": cut(skimage_photo("astronaut.png"), (0, 0, 300, 300), _polygon_alpha(300, _card()), 1.0),
        "head": cut(skimage_photo("astronaut.png"), (160, 10, 340, 220), ellipse_alpha(210, 180), 1.0),
        "cup": cut(skimage_photo("coffee.png"), (140, 20, 460, 310), ellipse_alpha(290, 320), 1.0),
        "horse": cut(skimage_photo("ihc.png"), (56, 92, 456, 420), horse_alpha, 1.0),
        "retina": cut(skimage_photo("retina.jpg"), (100, 100, 1311, 1311), ellipse_alpha(1211, 1211), 1.0),
    }


@dataclass(frozen=True)
class Paste:
    name: str
    background: str
    obj: str
    size: float  # the object's long side as a fraction of the background's short side
    at: tuple[float, float]  # top-left corner as fractions of the free room (0 = left/top, 1 = right/bottom)


PASTES = (
    Paste("coffee_cat", "coffee", "cat", 0.45, (0.1, 0.8)),
    Paste("chelsea_coin", "chelsea", "coin", 0.3, (0.85, 0.2)),
    Paste("rocket_head", "rocket", "head", 0.4, (0.15, 0.7)),
    Paste("hubble_star", "hubble", "star", 0.4, (0.6, 0.5)),
    Paste("retina_cup", "retina", "cup", 0.35, (0.3, 0.4)),
    Paste("astronaut_horse", "astronaut", "horse", 0.55, (0.9, 0.6)),
    Paste("portrait_card", "coffee_portrait", "card", 0.6, (0.2, 0.1)),
    Paste("brick_cat", "brick", "cat", 0.4, (0.5, 0.5)),
    Paste("camera_retina", "camera", "retina", 0.3, (0.05, 0.9)),
    Paste("coffee_horse", "coffee", "horse", 0.35, (0.9, 0.1)),
    Paste("chelsea_cup", "chelsea", "cup", 0.35, (0.1, 0.95)),
    Paste("hubble_head", "hubble", "head", 0.3, (0.2, 0.3)),
)


def make(p: Paste, backgrounds: dict[str, Image.Image], objects: dict[str, Image.Image]):
    """(bg, fg_bg, mask) for one paste: RGB, RGB, bool (H, W)."""
    bg = backgrounds[p.background].convert("RGB")
    obj = objects[p.obj]
    scale = p.size * min(bg.size) / max(obj.size)
    obj = obj.resize((max(1, round(obj.width * scale)), max(1, round(obj.height * scale))), Image.LANCZOS)
    x = round(p.at[0] * (bg.width - obj.width))
    y = round(p.at[1] * (bg.height - obj.height))
    alpha = np.zeros((bg.height, bg.width), np.float32)
    alpha[y : y + obj.height, x : x + obj.width] = np.asarray(obj, np.float32)[..., 3] / 255.0
    return bg, paste(bg, obj, (x, y)), alpha > 0.5


def write(out_dir: str | Path, two_shot: bool = False) -> list[str]:
    """Write the check set into ``out_dir`` (bg/, fg_bg/, mask/); returns the pair names.

    ``two_shot``: make each pair look like two separate photographs (``maskdepth.data.twoshot``:
    own noise, exposure, white balance, blur and JPEG per image, up to 2 px misalignment, a shadow
    cast by the object), seeded per pair. The mask stays the cut-out's alpha.
    """
    out = Path(out_dir)
    for sub in ("bg", "fg_bg", "mask"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    backgrounds, objects = _backgrounds(), _objects()
    for k, p in enumerate(PASTES):
        bg, fg_bg, mask = make(p, backgrounds, objects)
        if two_shot:
            from maskdepth.data.twoshot import two_shots

            pair = two_shots(bg, fg_bg, rng=1000 + k, mask=mask)
            bg, fg_bg = (Image.fromarray((np.clip(a, 0, 1) * 255).round().astype(np.uint8)) for a in pair)
        bg.save(out / "bg" / f"{p.name}.png")
        fg_bg.save(out / "fg_bg" / f"{p.name}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(out / "mask" / f"{p.name}.png")
    return [p.name for p in PASTES]


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[2:] not in ([], ["--two-shot"]):
        sys.exit("usage: python examples/checkset.py OUT_DIR [--two-shot]")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo's maskdepth
    names = write(sys.argv[1], two_shot=sys.argv[2:] == ["--two-shot"])
    print(f"wrote {len(names)} pairs to {sys.argv[1]}")

"""Write the Predict tab's example pairs into this folder (deterministic; run from anywhere).

    .venv/bin/python examples/make_examples.py

Each example is two files: ``<name>_bg.*`` (the background) and ``<name>_fg_bg.*`` (the same
background with an object pasted in), the model's two inputs.

- ``synthetic_N``: scenes from our own generator (``SyntheticScenes(size=224)``) with a data
  seed no training run uses by default, so the examples are unseen scenes.
- real photographs: a scikit-image sample photo as the background, with an object cut
  from another sample photo pasted in through a soft alpha (a coin with a circular alpha,
  the cat's head with an elliptical alpha, the rocket by brightness). Sources and licences
  are in LICENSES.md. They are saved as JPEG (quality 90) to stay small; the composite is
  made from the decoded background, so bg and fg_bg differ only where the object is (up to
  JPEG noise).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

HERE = Path(__file__).resolve().parent
SYNTHETIC_SEED = 12345  # training uses data_seed 0 unless told otherwise
SYNTHETIC_SAMPLES = (12290, 20290, 235248)  # three rooms with the object in clear view
JPEG_QUALITY = 90


def skimage_photo(name: str) -> Image.Image:
    """A photo from scikit-image's data folder, as RGB (the folder ships with the wheel: no network)."""
    import skimage

    path = Path(skimage.__file__).parent / "data" / name
    return Image.open(path).convert("RGB")


def soft(alpha: np.ndarray, blur: float = 1.5) -> np.ndarray:
    """Feather a [0, 1] alpha so the pasted edge is not aliased."""
    img = Image.fromarray((np.clip(alpha, 0, 1) * 255).astype(np.uint8))
    return np.asarray(img.filter(ImageFilter.GaussianBlur(blur)), np.float32) / 255.0


def ellipse_alpha(h: int, w: int) -> np.ndarray:
    """(h, w) alpha: 1 inside the ellipse inscribed in the box, 0 outside."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = ((x + 0.5 - w / 2) / (w / 2)) ** 2 + ((y + 0.5 - h / 2) / (h / 2)) ** 2
    return (r <= 1.0).astype(np.float32)


def cut(photo: Image.Image, box: tuple[int, int, int, int], alpha: np.ndarray, scale: float) -> Image.Image:
    """An RGBA cut-out of ``photo[box]`` with ``alpha`` (box-sized), resized by ``scale``."""
    rgb = np.asarray(photo.crop(box), np.uint8)
    rgba = np.dstack([rgb, (soft(alpha) * 255).round().astype(np.uint8)])
    out = Image.fromarray(rgba, "RGBA")
    size = (max(1, round(out.width * scale)), max(1, round(out.height * scale)))
    return out.resize(size, Image.LANCZOS)


def paste(bg: Image.Image, obj: Image.Image, at: tuple[int, int]) -> Image.Image:
    """``bg`` with the RGBA ``obj`` alpha-composited at ``at`` (top-left)."""
    out = bg.convert("RGBA")
    out.alpha_composite(obj, dest=at)
    return out.convert("RGB")


def save_pair(name: str, bg: Image.Image, fg_bg_from: Callable[[Image.Image], Image.Image], ext: str) -> None:
    """Save ``bg`` and the composite made from the *saved* background (so both share JPEG artefacts)."""
    bg_path = HERE / f"{name}_bg.{ext}"
    params = {"quality": JPEG_QUALITY, "optimize": True} if ext == "jpg" else {"optimize": True}
    bg.save(bg_path, **params)
    decoded = Image.open(bg_path).convert("RGB")
    fg_bg_from(decoded).save(HERE / f"{name}_fg_bg.{ext}", **params)


def synthetic_examples() -> None:
    from maskdepth.data.synthetic import SyntheticScenes

    scenes = SyntheticScenes(backgrounds=100, foregrounds=100, positions=20, size=224, seed=SYNTHETIC_SEED)
    for n, index in enumerate(SYNTHETIC_SAMPLES, start=1):
        sample = scenes[index]

        def to_img(t) -> Image.Image:
            return Image.fromarray((t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))

        fg_bg = to_img(sample["fg_bg"])
        save_pair(f"synthetic_{n}", to_img(sample["bg"]), lambda _bg, img=fg_bg: img, "png")


def real_pastes() -> list[tuple[str, Image.Image, Image.Image, tuple[int, int]]]:
    """(name, background, RGBA cut-out, top-left) of the three real-photo examples."""
    # 1. A Greek coin (coins.png, greyscale) on the coffee table (coffee.png, 600x400).
    coin = cut(skimage_photo("coins.png"), (314, 152, 382, 220), ellipse_alpha(68, 68), scale=1.5)
    # 2. Chelsea the cat's head (elliptical alpha) next to the astronaut (512x512).
    head = cut(skimage_photo("chelsea.png"), (40, 0, 410, 300), ellipse_alpha(300, 370), scale=0.5)
    # 3. The Falcon 9 rocket (cut by brightness: white body against the dusk sky) on the brick wall.
    rocket_photo = skimage_photo("rocket.jpg")
    box = (300, 122, 345, 340)
    lum = np.asarray(rocket_photo.crop(box).convert("L"), np.float32)
    rocket = cut(rocket_photo, box, np.clip((lum - 90) / 40, 0, 1), scale=1.2)
    brick = skimage_photo("brick.png").resize((384, 384), Image.LANCZOS)
    return [
        ("coffee_coin", skimage_photo("coffee.png"), coin, (60, 250)),
        ("astronaut_cat", skimage_photo("astronaut.png"), head, (300, 300)),
        ("brick_rocket", brick, rocket, (150, 60)),
    ]


def real_examples() -> None:
    for name, bg, obj, at in real_pastes():
        save_pair(name, bg, lambda decoded, obj=obj, at=at: paste(decoded, obj, at), "jpg")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))  # run as a script: make the repo's maskdepth importable
    synthetic_examples()
    real_examples()
    total = sum(p.stat().st_size for p in HERE.iterdir() if p.suffix in (".png", ".jpg"))
    print(f"wrote examples to {HERE} ({total / 1024:.0f} KiB of images)")

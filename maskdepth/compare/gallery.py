"""The comparison's gallery: held-out samples from different scenes, each variant's mask and depth.

Written as PNG tiles at the model's resolution under ``<comparison>/gallery/``; results.json
keeps their layout (``samples``: one column per sample; ``rows``: one row per variant), and
the Compare tab lays them out with labels (:mod:`maskdepth.ui.compare_html`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from maskdepth.data.transforms import model_input
from maskdepth.imageio import grey_tile, rgb_tile, save_png_rgb
from maskdepth.model.wnet import WNet
from maskdepth.naming import slug
from maskdepth.predict.outputs import colorize_depth

GALLERY_SAMPLES = 4


def spread(indices: Sequence[int], n: int) -> list[int]:
    """``n`` of ``indices`` evenly spaced over the list (all of them if n <= 0 or n >= len)."""
    if n <= 0 or n >= len(indices):
        return list(indices)
    return [indices[int(j)] for j in np.linspace(0, len(indices) - 1, n).round()]


def gallery_samples(dataset: Dataset, test_indices: Sequence[int], n: int = GALLERY_SAMPLES) -> list[int]:
    """Up to ``n`` held-out samples, each from a different scene when the dataset tells scenes apart.

    Test splits are sorted and a synthetic dataset keeps each room's samples together, so the
    first few test samples would all show one room; here the rooms are spread instead.
    """
    scene_of = getattr(dataset, "background_index", None)
    if scene_of is None:
        return spread(list(test_indices), n)
    first: dict[int, int] = {}
    for i in test_indices:
        first.setdefault(scene_of(i), i)
    picked = spread([first[s] for s in sorted(first)], n)
    rest = [i for i in test_indices if i not in set(picked)]
    return sorted(picked + spread(rest, n - len(picked)) if len(picked) < n else picked)


def _rgb(t: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) uint8."""
    return rgb_tile(t.permute(1, 2, 0).numpy())


@torch.inference_mode()
def write_gallery(
    models: Mapping[str, WNet], dataset: Dataset, indices: Sequence[int], folder: Path, seed: int
) -> dict:
    """Predict ``indices`` with each model, write the tiles, return the layout for results.json.

    Returns:
        ``{"seed", "samples": [{"index", "scene", "input", "background", "mask", "depth"}],
        "rows": {variant: [{"mask", "depth"} per sample]}}``; paths relative to ``folder``.
    """
    samples = [dataset[i] for i in indices]
    batch = {k: torch.stack([s[k] for s in samples]) for k in ("bg", "fg_bg", "mask", "depth")}
    scene_of = getattr(dataset, "background_index", None)

    def save(tile: np.ndarray, name: str) -> str:
        path = folder / "gallery" / f"{name}.png"
        save_png_rgb(tile, path)
        return str(path.relative_to(folder))

    columns = []
    for j, i in enumerate(indices):
        columns.append(
            {
                "index": int(i),
                "scene": int(scene_of(i)) if scene_of is not None else None,
                "input": save(_rgb(batch["fg_bg"][j]), f"sample{j}-input"),
                "background": save(_rgb(batch["bg"][j]), f"sample{j}-background"),
                "mask": save(grey_tile(batch["mask"][j, 0].numpy()), f"sample{j}-target-mask"),
                "depth": save(colorize_depth(batch["depth"][j, 0].numpy()), f"sample{j}-target-depth"),
            }
        )
    rows = {}
    for name, model in models.items():
        was_training = model.training
        model.eval()
        out = model(model_input(batch["bg"], batch["fg_bg"], model.in_channels))
        model.train(was_training)
        mask, depth = torch.sigmoid(out.mask)[:, 0].numpy(), torch.sigmoid(out.depth)[:, 0].numpy()
        tag = slug(name, keep="")  # "bce|ssim" -> "bce-ssim"
        rows[name] = [
            {
                "mask": save(grey_tile(mask[j]), f"sample{j}-{tag}-mask"),
                "depth": save(colorize_depth(depth[j]), f"sample{j}-{tag}-depth"),
            }
            for j in range(len(indices))
        ]
    return {"seed": seed, "samples": columns, "rows": rows}

"""Tiny models, data and training configs: each run takes well under a second on one CPU core.

``conftest.py`` runs every test module with one torch thread (``torch_threads(1)``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from maskdepth import WNet

# SyntheticScenes(2, 2, 2) at 32x32: 16 samples -> 11 train / 5 test with the 70:30 split.
TINY_DATA = {"backgrounds": 2, "foregrounds": 2, "positions": 2, "size": 32}
TINY_WIDTH = 4


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch threads, then restore the previous count.

    A tiny W-Net is dominated by thread hand-offs: with a busy CPU, one thread is
    10x faster than two.
    """
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def tiny_model(in_channels: int = 6, image_size: int = 32, seed: int = 0) -> WNet:
    """A WNet(base_width=4) in eval mode whose BatchNorm running stats are not the init values."""
    torch.manual_seed(seed)
    model = WNet(in_channels=in_channels, base_width=TINY_WIDTH, image_size=image_size)
    with torch.no_grad():
        model(torch.randn(4, in_channels, 32, 32) * 2 + 0.5)  # train-mode pass updates the running stats
    return model.eval()


def tiny_config(out_dir: str | os.PathLike, **overrides):
    """A TrainConfig that trains a WNet(base_width=4) for 3 steps on SyntheticScenes(2, 2, 2) at 32x32."""
    from maskdepth.training.config import TrainConfig

    values = {
        **TINY_DATA,
        "base_width": TINY_WIDTH,
        "batch_size": 4,
        "steps": 3,
        "eval_samples": 4,
        "threads": 1,
        "num_workers": 0,
        "out_dir": str(out_dir),
    }
    values.update(overrides)
    return TrainConfig(**values)


def scene(width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8 random pixels, the same for every call of one size: the test scenes."""
    return np.random.default_rng([height, width]).integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_image(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """A random RGB PNG of the given size: one random scene per size with a patch of its own (``seed``)
    pasted in, so that any two of one size are a background and an exact paste into it, as a user's
    pair is (the predictor registers a pair, and refuses two different scenes)."""
    image = scene(width, height)
    rng = np.random.default_rng(seed)
    ph, pw = max(1, height // 4), max(1, width // 4)
    y, x = rng.integers(0, height - ph + 1), rng.integers(0, width - pw + 1)
    image[y : y + ph, x : x + pw] = rng.integers(0, 256, (ph, pw, 3), dtype=np.uint8)
    Image.fromarray(image).save(path)
    return path


def tiny_train_controls(**overrides: object) -> dict:
    """The app Train tab's controls for a run of a few steps on 16 synthetic 32 px samples.

    The recipe (losses, optimiser, schedule, input channels) is TrainConfig's defaults.
    """
    from maskdepth.training.config import TrainConfig

    from .ui import train_tab  # the app's modules are imported in support/ui.py only

    d = TrainConfig(steps=1)
    recipe = (
        "mask_loss", "depth_loss", "optimizer", "lr", "scheduler", "in_channels", "resume_lr", "scene_families",
        "two_shot",
    )  # fmt: skip
    controls: dict = {
        **{name: getattr(d, name) for name in recipe},
        **TINY_DATA,
        "batch_size": 4,
        "budget_kind": "steps",
        "budget": 3,
        "base_width": TINY_WIDTH,
        "resume": train_tab.NO_RESUME,
        "eval_every": 0,
        "eval_samples": 8,
        "sample_every": 1,
        "run_name": "tiny",
    }
    controls.update(overrides)
    return controls


def wnet_with_stats(in_channels: int = 6, width: int = 4, seed: int = 0, **kwargs: int) -> WNet:
    """A small WNet in eval mode whose BatchNorm buffers are set, not trained: running mean / var
    drawn uniformly and ``num_batches_tracked`` = 7, so a round trip must carry every buffer."""
    torch.manual_seed(seed)
    model = WNet(in_channels=in_channels, base_width=width, **kwargs)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
            module.num_batches_tracked.fill_(7)
    return model.eval()


def logits(model: WNet, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's (mask, depth) logits, in eval mode, on one fixed random input of ``size`` px."""
    generator = torch.Generator().manual_seed(123)
    x = torch.rand(1, model.in_channels, size, size, generator=generator) * 2 - 1
    with torch.no_grad():
        out = model.eval()(x)
    return out.mask, out.depth


def assert_same_outputs(a: WNet, b: WNet, size: int = 32) -> None:
    """``b`` gives exactly ``a``'s logits."""
    for got, want in zip(logits(b, size), logits(a, size), strict=True):
        assert torch.equal(got, want)


def save_seed_checkpoint(model: torch.nn.Module, path: Path, *, loss: object, acc: float) -> Path:
    """``model`` saved as the seed's training script saves a checkpoint (SEED.md): a ``torch.save`` dict of
    ``epoch``, ``model_state_dict``, ``optimizer_state_dict`` (Adam), ``loss`` and ``acc``."""
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    torch.save(
        {
            "epoch": 7,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
            "loss": loss,
            "acc": acc,
        },
        path,
    )
    return path

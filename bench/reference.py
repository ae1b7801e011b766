"""The reference training loop: the same W-Net trained the way the seed did, written plainly.

Eager fp32, default (NCHW-contiguous) memory format, Adam lr 0.01, BCE(mask) + BCE(depth),
a bare loop over a shuffled DataLoader on JPEG files decoded from disk (224x224 files read
back at 64x64, the seed's setup). It lives here, not in the library: it is a yardstick.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from maskdepth.data.folder import SeedLayoutDataset
from maskdepth.data.transforms import model_input
from maskdepth.model.wnet import WNet


class SeedStyleLoop:
    """A resumable seed-style training loop: :meth:`run_for` trains for a wall-clock window.

    The DataLoader iterator survives between windows (epochs restart inside a window, as
    they would in a long run), so windows can be interleaved with another loop's.
    """

    def __init__(
        self, folder: str | Path, *, batch_size: int = 32, size: int = 64, num_workers: int = 0, seed: int = 0
    ):
        torch.manual_seed(seed)
        self.dataset = SeedLayoutDataset(folder, size=size)
        self.batch_size = batch_size
        self.loader = DataLoader(
            self.dataset,
            batch_size=batch_size,
            shuffle=True,
            drop_last=len(self.dataset) > batch_size,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
            generator=torch.Generator().manual_seed(seed),
        )
        self.model = WNet(image_size=size).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.01)
        self._batches = self._forever()
        self.steps = 0
        self.last_loss = float("nan")

    def _forever(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            yield from self.loader

    def step(self) -> int:
        """One optimiser step on the next batch; returns the number of images in it."""
        batch = next(self._batches)
        out = self.model(model_input(batch["bg"], batch["fg_bg"], 6))
        loss = F.binary_cross_entropy_with_logits(
            out.mask, batch["mask"]
        ) + F.binary_cross_entropy_with_logits(out.depth, batch["depth"])
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.steps += 1
        self.last_loss = float(loss.item())
        return int(batch["fg_bg"].shape[0])

    def run_for(self, seconds: float) -> tuple[int, float]:
        """Train until ``seconds`` have passed (at least one step); returns (images, elapsed seconds)."""
        images, start = 0, time.perf_counter()
        while True:
            images += self.step()
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return images, elapsed

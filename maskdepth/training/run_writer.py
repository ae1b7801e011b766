"""Every file of a run folder, written from one place, by one process.

A run folder holds the best weights (``config.json`` + ``model.safetensors``, the
``save_pretrained`` layout, written by :func:`maskdepth.hub.checkpoint.save_model`), ``train_config.json``,
``metrics.json``, ``last.pt`` (for ``--resume``) and, when the run knows the command that
reproduces it, the model card (``README.md`` + ``card.json``, :func:`maskdepth.training.runs.write_run_card`).
Every file is written atomically, so a crash or a full disk never leaves a half-written one.

Under torchrun only rank 0 writes: a :class:`RunWriter` with ``enabled=False`` does nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from maskdepth import fileio
from maskdepth.errors import CheckpointError, MaskDepthError, TrainingError
from maskdepth.hub.pretrained import WNet


def save_weights(model: WNet, folder: Path) -> None:
    """Write config.json + model.safetensors (the save_pretrained layout), atomically."""
    from maskdepth.hub.checkpoint import save_model

    save_model(model, folder)


def write_failure(run_dir: Path, err: OSError) -> str:
    """The message for a run folder that cannot be written: names the folder, the cause and the fix.

    Every file is written atomically, so whatever was saved before (the best weights) stays intact.
    """
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free some disk space or choose another folder"
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = "make it writable or choose another folder"
    else:
        fix = "check the disk or choose another folder"
    return f"could not write to {run_dir} ({err.strerror or err}): {fix}; files saved before are intact"


class RunWriter:
    """Writes a run folder; on every rank but 0 (``enabled=False``) each method does nothing.

    Creating one checks that the folder can be written (a run fails at once, not after an
    hour of training); :meth:`discard_if_unused` removes it again if the run never starts.
    OSErrors of the writes during training propagate (the loop turns them into
    :meth:`failure` messages); :meth:`write_config`, written before training, raises
    TrainingError itself.
    """

    def __init__(self, run_dir: Path, enabled: bool = True):
        self.run_dir, self.enabled = Path(run_dir), enabled
        self.created = enabled and not self.run_dir.exists()
        if not enabled:
            return
        try:
            fileio.check_writable(self.run_dir)
        except OSError as e:
            raise TrainingError(
                f"cannot write to the output folder {self.run_dir} ({e.strerror}); choose another"
            ) from e

    @contextlib.contextmanager
    def discard_if_unused(self) -> Iterator[None]:
        """On a MaskDepthError inside, remove the folder if this run created it and it is empty."""
        try:
            yield
        except MaskDepthError:
            if self.created and self.run_dir.is_dir() and not any(self.run_dir.iterdir()):
                self.run_dir.rmdir()
            raise

    def failure(self, err: OSError) -> str:
        return write_failure(self.run_dir, err)

    def write_config(self, cfg: Any) -> None:
        """train_config.json: the config as run (reproduces it)."""
        if self.enabled:
            try:
                fileio.write_json(self.run_dir / "train_config.json", cfg.to_dict())
            except OSError as e:
                raise TrainingError(self.failure(e)) from e

    def write_best(self, model: WNet) -> None:
        if self.enabled:
            save_weights(model, self.run_dir)

    def load_best(self, model: WNet) -> None:
        """Load the best weights written so far into ``model`` (if any)."""
        path = self.run_dir / "model.safetensors"
        if self.enabled and path.is_file():
            from safetensors.torch import load_file

            model.load_state_dict(load_file(str(path)))

    def write_metrics(
        self,
        best: Any,
        history: list[dict],
        dataset: str,
        precision: str,
        precision_choice: dict | None = None,
    ) -> None:
        """metrics.json: the best evaluation, every evaluation, the data set and the forward's precision
        (with how it was chosen: forced, measured or cached, and the measured bf16 speedup)."""
        if self.enabled:
            fileio.write_json(
                self.run_dir / "metrics.json",
                {
                    "best": dataclasses.asdict(best) if best else None,
                    "history": history,
                    "dataset": dataset,
                    "precision": precision,
                    "precision_choice": precision_choice,
                },
            )

    def write_last(
        self,
        model: WNet,
        optimizer: torch.optim.Optimizer,
        schedule: Any,
        step: int,
        epoch: int,
        cfg: Any,
    ) -> None:
        """last.pt: model, optimiser and scheduler state to resume from."""
        if self.enabled:
            fileio.torch_save(
                self.run_dir / "last.pt",
                {
                    "model": {k: v.contiguous() for k, v in model.state_dict().items()},
                    "model_config": model.config,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": schedule.state_dict(),
                    "lr": float(optimizer.param_groups[0]["lr"]),
                    "step": step,
                    "epoch": epoch,
                    "train_config": json.loads(json.dumps(cfg.to_dict())),
                },
            )

    def write_card(self, command: str | None) -> None:
        """README.md + card.json, naming ``command`` as what reproduces the run (None: no card)."""
        if self.enabled and command:
            from maskdepth.training.runs import write_run_card

            write_run_card(self.run_dir, command=command)


def load_resume(source: str) -> tuple[WNet, dict | None]:
    """The model (and the last.pt state, if any) to resume from: a run folder, its last.pt or a model."""
    path = Path(source)
    last = path if path.is_file() else path / "last.pt"
    state = None
    if last.is_file():
        try:
            state = torch.load(last, map_location="cpu", weights_only=True)
        except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as e:
            if last != path:  # a run folder's own last.pt is broken
                raise CheckpointError(
                    f"cannot read {last} to resume (truncated or not a checkpoint: {type(e).__name__}); delete "
                    "it to resume from the run's best weights, or resume from another run"
                ) from e
            # A file that is no resume state: load_model reads it (seed checkpoints) or says what is wrong.
    if isinstance(state, dict) and isinstance(state.get("model_config"), dict) and "model" in state:
        try:
            model = WNet(**state["model_config"])
            model.load_state_dict(state["model"])
        except (TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(
                f"{last} does not hold a usable resume state ({e}); resume from another run"
            ) from e
        return model, state
    from maskdepth.hub.transfer import load_model

    return load_model(source), None

"""Trained runs on disk: finding them (the app's model picker) and writing their model cards."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from maskdepth import fileio
from maskdepth.fileio import read_json
from maskdepth.hub.card import best_metrics, card_info, model_card

MODEL_FILES = ("config.json", "model.safetensors")


@dataclass
class RunInfo:
    """A folder that holds a loadable model (``save_pretrained`` layout)."""

    name: str  # path relative to the runs folder, e.g. "my-run" or "compare/bce-bce"
    path: Path
    metrics: dict[str, float] = field(default_factory=dict)
    train_config: dict = field(default_factory=dict)
    modified: float = 0.0

    def label(self) -> str:
        """Short text for pickers: name plus the headline metrics if known."""
        if "mask_iou" in self.metrics:
            return f"{self.name} (IoU {self.metrics['mask_iou']:.3f}, δ<1.25 {self.metrics.get('depth_delta1', 0):.3f})"
        return self.name


def is_model_dir(path: Path) -> bool:
    return all((path / f).is_file() for f in MODEL_FILES)


def run_info(path: Path, root: Path | None = None) -> RunInfo:
    name = str(path.relative_to(root)) if root is not None else path.name
    return RunInfo(
        name=name,
        path=path,
        metrics=best_metrics(read_json(path / "metrics.json")),
        train_config=read_json(path / "train_config.json"),
        modified=(path / "model.safetensors").stat().st_mtime,
    )


def list_runs(runs_dir: str | os.PathLike, max_depth: int = 2) -> list[RunInfo]:
    """Every model folder under ``runs_dir`` (up to ``max_depth`` levels), newest first."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    found: list[RunInfo] = []
    frontier = [root]
    for _ in range(max_depth):
        nxt = []
        for folder in frontier:
            for child in sorted(folder.iterdir()):
                if child.is_dir() and not child.is_symlink() and not child.name.startswith("."):
                    if is_model_dir(child):
                        found.append(run_info(child, root))
                    nxt.append(child)
        frontier = nxt
    return sorted(found, key=lambda r: r.modified, reverse=True)


def write_run_card(run_dir: str | os.PathLike, command: str | None = None) -> Path:
    """Write README.md (the model card) for a run; ``command`` is what reproduces it."""
    run_dir = Path(run_dir)
    if command:
        fileio.write_json(run_dir / "card.json", {**read_json(run_dir / "card.json"), "command": command})
    return fileio.write_text(run_dir / "README.md", model_card(card_info(run_dir, command)))

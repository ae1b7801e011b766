"""Trained runs on disk: finding them (the app's model picker) and writing their model cards."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from maskdepth import fileio

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


def read_json(path: Path) -> dict:
    """A JSON file as a dict, or {} if missing or unreadable (a run may still be writing it)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def best_metrics(record: object) -> dict[str, float]:
    """The best evaluation's metrics in a parsed metrics.json (``{"best": {"metrics": {...}}}``, as
    train.py writes it; a flat ``{"best": {...}}`` or a bare metrics dict are read too)."""
    if not isinstance(record, dict):
        return {}
    best = record.get("best", record)
    best = best.get("metrics", best) if isinstance(best, dict) else {}
    return {k: v for k, v in best.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


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


def card_info(run_dir: str | os.PathLike, command: str | None = None) -> dict:
    """What a model card says about a run folder, read from its records (the one reader).

    ``metrics.json`` (best test-split metrics, dataset), ``train_config.json``, ``config.json``,
    ``card.json`` (hand-written ``description`` / ``command`` / ``base_model`` / ``space_url``) and
    ``evaluation.json`` (written by ``evaluate --update-card``; its metrics win). Missing or
    unreadable files are skipped. Used by :func:`write_run_card` and by ``maskdepth.push_to_hub``.
    """
    run_dir = Path(run_dir)
    record = read_json(run_dir / "metrics.json")
    train_config = read_json(run_dir / "train_config.json")
    info: dict = {"model_config": read_json(run_dir / "config.json")}
    metrics = best_metrics(record)
    if metrics:
        info.update(metrics=metrics, dataset_split="test")  # train.py evaluates the held-out split
    if train_config:
        info["train_config"] = train_config
    dataset = record.get("dataset") or train_config.get("dataset")
    if dataset:
        info["dataset"] = dataset
    card = read_json(run_dir / "card.json")
    info.update({k: card[k] for k in ("description", "command", "base_model", "space_url") if card.get(k)})
    if command:
        info["command"] = command
    evaluation = read_json(run_dir / "evaluation.json")
    if evaluation.get("metrics"):
        split = str(evaluation.get("split", ""))
        info["metrics"] = evaluation["metrics"]
        info["eval_split"] = f"{split}, printed by `{evaluation.get('command')}`"
        named = re.search(r"of the (\w+) split(?: of (.+))?", split)
        info["dataset_split"] = named.group(1) if named else None
        if named and named.group(2):  # the model-index names the data the metrics were measured on
            info["eval_dataset"] = named.group(2)
    return info


def write_run_card(run_dir: str | os.PathLike, command: str | None = None) -> Path:
    """Write README.md (the model card) for a run; ``command`` is what reproduces it."""
    from maskdepth.hub.card import model_card

    run_dir = Path(run_dir)
    if command:
        fileio.write_json(run_dir / "card.json", {**read_json(run_dir / "card.json"), "command": command})
    return fileio.write_text(run_dir / "README.md", model_card(card_info(run_dir, command)))

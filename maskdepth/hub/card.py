"""The model card: one builder for every card maskdepth writes or pushes.

``README.md`` of a run, of ``save_model(card=...)``, of ``WNet.save_pretrained``, and of every
push (``maskdepth.push_to_hub``, ``WNet.push_to_hub``, the CLI, the app) comes from
:func:`build_card`: a ``huggingface_hub.ModelCard`` whose metadata the Hub reads
(library, pipeline tag, tags, license, ``base_model``, and the metrics as ``model-index``
eval results), followed by a human-readable body.

``pipeline_tag`` is ``depth-estimation``: the Hub allows one, and the depth map covers the whole
scene while the mask is a single binary object; ``image-segmentation`` is a tag, and the mask
metrics are filed under that task in the model-index.

Keys that look like secrets are dropped and ``hf_...`` tokens are redacted wherever they appear
(:func:`scrub`, :func:`redact`); a card never carries a token.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from maskdepth.fileio import read_json
from maskdepth.model.wnet import WNet, WNetConfig, count_parameters

__all__ = ["build_card", "model_card", "scrub", "redact", "PIPELINE_TAG", "TAGS"]

PIPELINE_TAG = "depth-estimation"
TAGS = ("depth-estimation", "image-segmentation", "maskdepth", "w-net", "pytorch")
LICENSE = "mit"
REDACTED = "<redacted>"
_HF_TOKEN_RE = re.compile(r"hf_[A-Za-z0-9]{10,}")
_SECRET_KEY_RE = re.compile(r"token|secret|password|passwd|api_?key|credential", re.IGNORECASE)
_LOWER_IS_BETTER = ("rmse", "abs_rel", "absrel", "loss", "mae", "error")
_TASKS = {"mask_": ("image-segmentation", "Object mask"), "depth_": ("depth-estimation", "Depth")}


def build_card(info: Mapping[str, Any]) -> ModelCard:
    """A Hugging Face model card for a trained W-Net.

    Args:
        info: any of
            ``repo_id`` (the loading snippet; placeholder if unknown), ``title``, ``description``,
            ``space_url`` (a Space running the model), ``base_model`` (the Hub repo a resumed run
            started from), ``model_config`` (WNet config dict), ``parameters`` (int),
            ``metrics`` (name -> number, may be nested: ``{"mask": {"dice": 0.9}}``),
            ``eval_split`` (what the metrics were measured on, in words), ``eval_dataset`` (the
            data they were measured on, for the model-index; else ``dataset``), ``dataset_split``
            (``"test"``, ...), ``losses`` (dict or str), ``train_config`` (dict), ``dataset`` (str),
            ``command`` (str).

    Returns:
        The card; ``str(card)`` is the ``README.md`` text, ``card.data`` its metadata.
    """
    info = scrub(dict(info))
    metrics = _flatten(info.get("metrics") or {})
    data = ModelCardData(
        library_name="maskdepth",
        license=LICENSE,
        pipeline_tag=PIPELINE_TAG,
        tags=list(TAGS),
        base_model=info.get("base_model") or None,
        model_name=_model_name(info),
        eval_results=_eval_results(metrics, info) or None,
    )
    return ModelCard(redact(f"---\n{data.to_yaml()}\n---\n\n{_body(info, metrics)}"))


def model_card(info: Mapping[str, Any]) -> str:
    """``README.md`` text of :func:`build_card` (a run's card, ``save_model(card=...)``)."""
    return str(build_card(info))


def _model_name(info: Mapping[str, Any]) -> str:
    repo_id = info.get("repo_id")
    return str(repo_id) if repo_id else "maskdepth-wnet"


def _eval_results(metrics: dict[str, Any], info: Mapping[str, Any]) -> list[EvalResult]:
    """One EvalResult per mask_* / depth_* metric, filed under the task it measures."""
    from maskdepth.model.metrics import METRIC_NAMES

    dataset = str(info.get("eval_dataset") or info.get("dataset") or "unspecified")
    results = []
    for name, value in metrics.items():
        prefix = next((p for p in _TASKS if name.startswith(p)), None)
        if prefix is None or not math.isfinite(value):
            continue
        task_type, task_name = _TASKS[prefix]
        results.append(
            EvalResult(
                task_type=task_type,
                task_name=task_name,
                dataset_type="maskdepth-synthetic" if "synthetic" in dataset.lower() else "custom",
                dataset_name=dataset,
                dataset_split=info.get("dataset_split"),
                metric_type=name,
                metric_name=METRIC_NAMES.get(name, name),
                metric_value=round(float(value), 4),
            )
        )
    return results


def _body(info: Mapping[str, Any], metrics: dict[str, Any]) -> str:
    config = info.get("model_config") or {}
    lines = [
        f"# {info.get('title') or 'W-Net: object mask + depth (maskdepth)'}",
        "",
        info.get("description")
        or (
            "A W-Net that takes a background photo (`bg`) and the same photo with an object pasted in "
            "(`fg_bg`) and predicts two maps of the input's size: the pasted object's **mask** and the "
            "scene's **depth**. One shared stem feeds a 4-level mask U-Net and a 5-level depth U-Net; "
            "both heads return logits (apply `sigmoid`)."
        ),
        "",
    ]
    if info.get("space_url"):
        lines += [f"Try it in the browser: [{info['space_url']}]({info['space_url']}).", ""]
    lines += _model_section(config, info.get("parameters"))
    lines += _metrics_section(metrics, info.get("eval_split"))
    lines += _training_section(info)
    if info.get("command"):
        lines += ["## Reproduce", "", "```bash", str(info["command"]), "```", ""]
    repo_id = info.get("repo_id")
    source = repo_id or "path/to/this/folder"
    lines += [
        "## Use",
        "",
        "```python",
        "import maskdepth",
        "",
        f'model = maskdepth.load_model("{source}")  # eval mode, float32'
        + ("" if repo_id else "; or its Hub repo id once pushed"),
        f'# the same strict loader: maskdepth.WNet.from_pretrained("{source}")',
        "```",
        "",
        "Outside Python's maskdepth, as one ONNX file for onnxruntime (the network alone; input "
        "`cat([bg, fg_bg])` of RGB in [0, 1] normalised by `(x - 0.5) / 0.5`, H and W multiples of 32; "
        "outputs mask and depth logits):",
        "",
        "```bash",
        f"python -m maskdepth export-onnx --model {source} --out maskdepth.onnx",
        "```",
        "",
        "The maskdepth repository's docs/onnx.md has the onnxruntime code that reproduces the predictor's "
        "preprocessing exactly (resize, pad, normalise, sigmoid, crop); its tests run that code.",
        "",
        "Limitations: trained on the data described above; expect approximate masks and depths on other "
        "kinds of photos.",
        "",
    ]
    return "\n".join(lines)


def _model_section(config: Mapping[str, Any], params: int | None) -> list[str]:
    lines = ["## Model", ""]
    if config:
        lines += ["| config | value |", "| --- | --- |"]
        lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in config.items()]
        lines.append("")
        if params is None:
            try:
                params = count_parameters(WNet.from_config(WNetConfig.from_dict(config)))
            except (TypeError, ValueError):
                params = None
        if config.get("train_sizes"):
            low, high = config["train_sizes"]
            lines += [
                f"Trained on images from {low} to {high} pixels a side (square and not, up to 2:1; "
                f"evaluated at {config.get('image_size', high)}x{config.get('image_size', high)}).",
                "",
            ]
    if params is not None:
        lines += [f"Parameters: {int(params):,}.", ""]
    in_channels = config.get("in_channels", 6)
    lines += [
        f"Input: `(B, {in_channels}, H, W)` float32, H and W >= 32, "
        + ("`cat([bg, fg_bg])` on channels" if in_channels == 6 else "`fg_bg` only")
        + ", each image in [0, 1] normalised as `(x - 0.5) / 0.5`. Output: `WNetOutput(mask, depth)`, "
        "logits of shape `(B, 1, H, W)`. Depth convention: near = 1, far = 0 (inverse depth, "
        "see `maskdepth.data.DEPTH_CONVENTION`).",
        "",
    ]
    return lines


def _metrics_section(metrics: dict[str, Any], eval_split: str | None) -> list[str]:
    if not metrics:
        return []
    from maskdepth.model.metrics import HIGHER_IS_BETTER, METRIC_NAMES

    lines = ["## Evaluation", ""]
    if eval_split:
        lines += [f"Measured on {eval_split}.", ""]
    lines += ["| metric | value | better |", "| --- | --- | --- |"]
    known = [k for k in METRIC_NAMES if k in metrics]  # the metrics table's order first
    for name in known + [k for k in metrics if k not in METRIC_NAMES]:
        higher = HIGHER_IS_BETTER.get(name, not any(s in name.lower() for s in _LOWER_IS_BETTER))
        label = METRIC_NAMES.get(name, name)
        lines.append(
            f"| {_cell(label)} | {_cell(_number(metrics[name]))} | {'higher' if higher else 'lower'} |"
        )
    return [*lines, ""]


def _training_section(info: Mapping[str, Any]) -> list[str]:
    losses, dataset, train_config = info.get("losses"), info.get("dataset"), info.get("train_config")
    if not (losses or dataset or train_config or info.get("base_model")):
        return []
    lines = ["## Training", ""]
    if losses:
        text = (
            ", ".join(f"{k}: {v}" for k, v in losses.items()) if isinstance(losses, Mapping) else str(losses)
        )
        lines += [f"Losses: {text}.", ""]
    if dataset:
        lines += [f"Dataset: {dataset}", ""]
    if info.get("base_model"):
        lines += [f"Fine-tuned from [{info['base_model']}](https://huggingface.co/{info['base_model']}).", ""]
    if train_config:
        body = json.dumps(train_config, indent=2, default=str)
        lines += ["Training config:", "", "```json", body, "```", ""]
    return lines


def _flatten(metrics: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}_"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = value
    return out


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return "nan" if math.isnan(value) else f"{value:.4f}"


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def scrub(obj: Any) -> Any:
    """Drop secret-looking keys (``*token*``, ``*secret*``, ``*password*``, ``*api_key*``) and
    redact ``hf_...`` tokens, recursively."""
    if isinstance(obj, Mapping):
        return {k: scrub(v) for k, v in obj.items() if not _SECRET_KEY_RE.search(str(k))}
    if isinstance(obj, (list, tuple)):
        return [scrub(v) for v in obj]
    if isinstance(obj, str):
        return redact(obj)
    return obj


def redact(text: str, secrets: tuple[str | bool | None, ...] = ()) -> str:
    """Replace ``hf_...`` tokens and the given literal secrets with ``<redacted>``."""
    for secret in secrets:
        if isinstance(secret, str) and secret:
            text = text.replace(secret, REDACTED)
    return _HF_TOKEN_RE.sub(REDACTED, text)


def best_metrics(record: object) -> dict[str, float]:
    """The best evaluation's metrics in a parsed metrics.json (``{"best": {"metrics": {...}}}``, as
    train.py writes it; a flat ``{"best": {...}}`` or a bare metrics dict are read too)."""
    if not isinstance(record, dict):
        return {}
    best = record.get("best", record)
    best = best.get("metrics", best) if isinstance(best, dict) else {}
    return {k: v for k, v in best.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def card_info(run_dir: str | os.PathLike, command: str | None = None) -> dict:
    """What a model card says about a run folder, read from its records (the one reader).

    ``metrics.json`` (best test-split metrics, dataset), ``train_config.json``, ``config.json``,
    ``card.json`` (hand-written ``description`` / ``command`` / ``base_model`` / ``space_url``) and
    ``evaluation.json`` (written by ``evaluate --update-card``; its metrics win). Missing or
    unreadable files are skipped. Used by :func:`maskdepth.training.runs.write_run_card` and by ``maskdepth.push_to_hub``.
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

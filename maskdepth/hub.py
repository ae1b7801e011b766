"""Save, load and share W-Net weights: local folders, seed checkpoints and Hugging Face Hub repos.

One loading entry point, :func:`load_model`, accepts

- a folder written by :func:`save_model` (``config.json`` + ``model.safetensors``, the
  ``save_pretrained`` layout, so ``WNet.from_pretrained`` reads it too);
- a ``.safetensors`` file;
- a seed checkpoint: a ``torch.save`` dict ``{'epoch', 'model_state_dict',
  'optimizer_state_dict', 'loss', 'acc'}`` or a bare state_dict, read with
  ``torch.load(weights_only=True)`` only; its config is inferred from the tensor shapes;
- a Hub repo id ``owner/name``.

Every path loads strictly: a missing, extra or mis-shaped tensor is a :class:`CheckpointError`
naming what the file holds and what was expected, never a silently half-initialised model.

Hub calls go through ``huggingface_hub`` with the endpoint read at call time
(``HF_ENDPOINT``), a quick reachability probe first (so "no network" fails in seconds instead
of retrying for half a minute), and every failure turned into a :class:`HubError` whose
message names the fix. Tokens never reach a message, a log line or a written file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from maskdepth.errors import CheckpointError, HubError, InputError
from maskdepth.model import WNet, count_parameters

logger = logging.getLogger(__name__)

__all__ = ["load_model", "save_model", "model_card", "push_to_hub", "pull"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
RUN_EXTRAS = ("metrics.json", "train_config.json")  # pushed along with a run folder when present
HUB_FILES = (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME)  # what pull / load_model fetch from a repo

TOKENS_URL = "https://huggingface.co/settings/tokens"
PROBE_TIMEOUT_S = 5.0  # a Hub that does not answer a HEAD within this is "unreachable"

# Upper bounds: a config.json (from a Hub repo, say) is built into a WNet before its weights are
# checked, so an absurd width or size must be refused first, not allocated (width 4096 = 140G parameters).
MAX_BASE_WIDTH = 128  # 4x the seed's 32: ~139M parameters, 0.55 GB in float32
MAX_IMAGE_SIZE = 1024  # predictions run at this resolution; the seed's images were 224
MAX_OUT_CHANNELS = 64
# Config fields: name -> (default, check, what a valid value is).
_CONFIG_FIELDS: dict[str, tuple[int, Callable[[int], bool], str]] = {
    "in_channels": (6, lambda v: v in (3, 6), "6 (bg + fg_bg) or 3 (fg_bg only)"),
    "out_channels": (1, lambda v: 1 <= v <= MAX_OUT_CHANNELS, f"an integer in [1, {MAX_OUT_CHANNELS}]"),
    "base_width": (
        32,
        lambda v: 2 <= v <= MAX_BASE_WIDTH and v % 2 == 0,
        f"an even integer in [2, {MAX_BASE_WIDTH}] (32 = the seed)",
    ),
    "image_size": (
        64,
        lambda v: 32 <= v <= MAX_IMAGE_SIZE,
        f"an integer in [32, {MAX_IMAGE_SIZE}] (the training resolution)",
    ),
}
_STEM_KEY = "inc.double_conv.0.weight"  # (base_width, in_channels, 3, 3)
_HEAD_KEY = "outc_mask.conv.weight"  # (out_channels, base_width, 1, 1)
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel / torch.compile key prefixes
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_CHECKPOINT_SUFFIXES = {".pt", ".pth", ".ckpt", ".bin", ".tar", ".safetensors", ".json"}
_HF_TOKEN_RE = re.compile(r"hf_[A-Za-z0-9]{10,}")
_SECRET_KEY_RE = re.compile(r"token|secret|password|passwd|api_?key|credential", re.IGNORECASE)
REDACTED = "<redacted>"


# ----------------------------------------------------------------------------- loading
def load_model(
    source: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    token: str | None = None,
    revision: str | None = None,
) -> WNet:
    """Load a W-Net from a folder, a weights file, a seed checkpoint or a Hub repo id.

    Args:
        source: a ``save_model`` / ``save_pretrained`` folder, a ``.safetensors`` file, a
            seed checkpoint (``torch.save`` dict with ``model_state_dict``, or a bare
            state_dict), or a Hub repo id ``owner/name``.
        device: where to put the model (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
        token: Hub token for private repos (default: ``HF_TOKEN`` or the stored login).
        revision: Hub branch, tag or commit (default: ``main``). Ignored for local sources.

    Returns:
        The model in ``eval()`` mode, float32, on ``device``.

    Raises:
        CheckpointError: the source cannot be read or does not hold W-Net weights.
        HubError: the Hub cannot be reached, rejects the token, or has no such repo.
        InputError: ``device`` is not available.
    """
    dev = _device(device)
    path = Path(source)
    if path.is_dir():
        model = _load_folder(path)
    elif path.is_file():
        model = _load_file(path)
    elif _looks_like_repo_id(str(source)):
        model = _load_folder(
            _download(str(source), token=token, revision=revision), source=f"Hub repo {source}"
        )
    else:
        raise CheckpointError(
            f"Cannot load {str(source)!r}: no such file or folder, and not a Hub repo id (owner/name). "
            "Pass a folder written by save_model, a .safetensors / seed .pt checkpoint, or a Hub repo id."
        )
    return model.to(dev).eval()


def _device(device: str | torch.device) -> torch.device:
    """Parse ``device`` and check it exists on this machine."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InputError(f"Unknown device {device!r} ({err}): use 'cpu', 'cuda', 'cuda:N' or 'mps'.") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"Device {device!r} is not available (no CUDA GPU visible to PyTorch): use device='cpu'."
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"Device {device!r} is not available (no Apple MPS backend): use device='cpu'.")
    return dev


def _looks_like_repo_id(text: str) -> bool:
    """``owner/name`` that is not obviously a local checkpoint path (``runs/x.pt``)."""
    return bool(_REPO_ID.match(text)) and Path(text).suffix.lower() not in _CHECKPOINT_SUFFIXES


def _load_folder(folder: Path, *, source: str | None = None) -> WNet:
    """Load ``config.json`` + ``model.safetensors`` from ``folder`` (strict)."""
    source = source or str(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        found = sorted(p.name for p in folder.iterdir())[:8] if folder.is_dir() else []
        raise CheckpointError(
            f"{source} has no {WEIGHTS_NAME} (it holds: {', '.join(found) or 'nothing'}). "
            "Pass a folder written by maskdepth.save_model, or the checkpoint file itself."
        )
    state = _read_safetensors(weights, source=f"{source}/{WEIGHTS_NAME}")
    config_path = folder / CONFIG_NAME
    if config_path.is_file():
        config = _read_config(config_path, source=f"{source}/{CONFIG_NAME}")
        fix = (
            f"{CONFIG_NAME} must describe the weights next to it: fix it, or re-save the folder "
            "with save_model."
        )
    else:
        config = _infer_config(state, source=source)
        fix = ""
    return _build(state, config, source=source, fix=fix)


def _load_file(path: Path) -> WNet:
    """Load a ``.safetensors`` file or a ``torch.save`` checkpoint (weights_only)."""
    if path.name == WEIGHTS_NAME and (path.parent / CONFIG_NAME).is_file():
        return _load_folder(path.parent)  # the file of a saved folder: use its config too
    if _is_safetensors(path):
        state = _read_safetensors(path, source=str(path))
        stored = _safetensors_config(path)
        config = {**_infer_config(state, source=str(path)), **(stored or {})}
        return _build(state, config, source=str(path), fix="")
    state = _read_torch_checkpoint(path)
    return _build(state, _infer_config(state, source=str(path)), source=str(path), fix="")


def _is_safetensors(path: Path) -> bool:
    """By suffix, or by the header (8-byte little-endian length, then a JSON object)."""
    if path.suffix.lower() == ".safetensors":
        return True
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < 100_000_000


def _read_safetensors(path: Path, *, source: str) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{source} is truncated or not a safetensors file ({err}): re-download it or save it again."
        ) from err


def _safetensors_config(path: Path) -> dict[str, int] | None:
    """The config save_model stores in the safetensors metadata, if any (keeps image_size)."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if "config" not in meta:
        return None
    return _check_config(
        _parse_json(meta["config"], source=f"the config in {path}'s metadata"), f"{path} metadata"
    )


def _read_torch_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a seed checkpoint or bare state_dict, never unpickling code."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pickle-protocol notices of old files
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError/RuntimeError/EOFError/KeyError on bad files
        text = str(err)
        # A pickle naming a Python global (a class or a function such as os.system) is code, not
        # tensors; other "weights only" failures (unknown opcodes) are corrupt or foreign bytes.
        if "Weights only load failed" in text and "global" in text.lower():
            detail = next((line.strip() for line in text.splitlines() if "GLOBAL" in line), "")
            raise CheckpointError(
                f"Refusing to load {path}: it contains pickled Python objects, not only tensors"
                f"{f' ({detail})' if detail else ''}. maskdepth reads checkpoints with "
                "torch.load(weights_only=True) so a file can never run code on your machine. If you trust "
                "the file, re-save just its weights elsewhere: "
                "torch.save(torch.load(f, weights_only=False)['model_state_dict'], 'clean.pt')."
            ) from None
        if "Weights only load failed" in text:
            detail = next((line.strip() for line in text.splitlines() if line.startswith("Unsupported")), "")
            raise CheckpointError(
                f"{path} is corrupt or not a PyTorch checkpoint that torch.load(weights_only=True) can read"
                f"{f' ({detail})' if detail else ''}. maskdepth never unpickles other objects, since that "
                "could run code: if you trust the file, re-save its weights with "
                "torch.save(model.state_dict(), 'clean.pt')."
            ) from None
        raise CheckpointError(
            f"{path} is truncated or not a PyTorch checkpoint "
            f"({type(err).__name__}: {(text.splitlines() or [''])[0][:200]}): "
            "re-download it or save it again."
        ) from err
    return _state_dict_of(obj, source=str(path))


def _state_dict_of(obj: object, *, source: str) -> dict[str, torch.Tensor]:
    """Pick the model weights out of a seed checkpoint dict or a bare state_dict."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{source} holds a {type(obj).__name__}, not a state_dict: expected a seed checkpoint "
            "{'model_state_dict': ..., 'epoch': ..., ...} or a bare W-Net state_dict."
        )
    for key in ("model_state_dict", "state_dict"):
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    else:
        if not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            keys = ", ".join(map(str, list(obj)[:8]))
            raise CheckpointError(
                f"{source} is a dict with keys [{keys}] but no 'model_state_dict' and not only tensors: "
                "expected a seed checkpoint {'model_state_dict': ..., 'epoch': ..., ...} "
                "or a bare state_dict."
            )
    state = {str(k): v for k, v in obj.items()}
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source}: the state_dict entries {bad[:3]} are not tensors.")
    for prefix in _WRAPPER_PREFIXES:  # saved from DataParallel / torch.compile
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _infer_config(state: Mapping[str, torch.Tensor], *, source: str) -> dict[str, int]:
    """``in_channels`` / ``base_width`` / ``out_channels`` from the tensor shapes."""
    stem = state.get(_STEM_KEY)
    if stem is None or stem.ndim != 4:
        keys = ", ".join(list(state)[:5])
        raise CheckpointError(
            f"{source} does not hold W-Net weights: it has no 4-D '{_STEM_KEY}' tensor (the W-Net stem); "
            f"it holds {len(state)} tensors, first keys: {keys or 'none'}. Expected a maskdepth folder "
            f"({CONFIG_NAME} + {WEIGHTS_NAME}), a seed checkpoint with 'model_state_dict', "
            "or a W-Net state_dict."
        )
    width, in_channels = int(stem.shape[0]), int(stem.shape[1])
    head = state.get(_HEAD_KEY)
    out_channels = int(head.shape[0]) if head is not None and head.ndim == 4 else 1
    if in_channels not in (3, 6):
        raise CheckpointError(
            f"{source}: its stem '{_STEM_KEY}' has shape {tuple(stem.shape)}, i.e. {in_channels} input "
            "channels; a W-Net takes 6 (bg + fg_bg) or 3 (fg_bg only). This is not a maskdepth checkpoint."
        )
    if width < 2 or width % 2 or width > MAX_BASE_WIDTH:
        raise CheckpointError(
            f"{source}: its stem '{_STEM_KEY}' has shape {tuple(stem.shape)}, i.e. base width {width}; "
            f"a W-Net needs an even width in [2, {MAX_BASE_WIDTH}]. This is not a maskdepth checkpoint."
        )
    if not 1 <= out_channels <= MAX_OUT_CHANNELS:
        raise CheckpointError(
            f"{source}: its head '{_HEAD_KEY}' has shape {tuple(head.shape)}, i.e. {out_channels} output "
            f"channels; a W-Net has 1 to {MAX_OUT_CHANNELS}. This is not a maskdepth checkpoint."
        )
    return {"in_channels": in_channels, "out_channels": out_channels, "base_width": width, "image_size": 64}


def _parse_json(text: str, *, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CheckpointError(
            f"{source} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}): "
            "fix it, or re-save the model with maskdepth.save_model."
        ) from err


def _read_config(path: Path, *, source: str) -> dict[str, int]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointError(
            f"Cannot read {source} ({err}): check the file, or re-save the folder."
        ) from err
    return _check_config(_parse_json(text, source=source), source)


def _check_config(raw: Any, source: str) -> dict[str, int]:
    """Validate a config dict; unknown keys are ignored, missing ones take WNet's defaults."""
    if not isinstance(raw, dict):
        raise CheckpointError(
            f"{source} must be a JSON object like "
            '{"in_channels": 6, "out_channels": 1, "base_width": 32, "image_size": 64}, '
            f"got a {type(raw).__name__}."
        )
    config = {}
    for name, (default, valid, expected) in _CONFIG_FIELDS.items():
        value = raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not valid(value):
            raise CheckpointError(
                f"{source}: field '{name}' is {value!r}, but must be {expected}. "
                "Fix the value, or re-save the model with maskdepth.save_model."
            )
        config[name] = value
    return config


def _build(state: dict[str, torch.Tensor], config: dict[str, int], *, source: str, fix: str) -> WNet:
    """Build ``WNet(**config)`` and load ``state`` into it with strict=True (float32)."""
    model = WNet(**config)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or reshaped:
        wanted = ", ".join(f"{k}={v}" for k, v in config.items() if k != "image_size")
        parts = []
        if reshaped:
            shown = "; ".join(
                f"{k}: file {tuple(state[k].shape)}, expected {tuple(expected[k].shape)}"
                for k in reshaped[:3]
            )
            parts.append(f"{len(reshaped)} tensors have another shape ({shown})")
        if missing:
            parts.append(f"{len(missing)} W-Net tensors are missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(
                f"{len(unexpected)} tensors are not part of a W-Net (e.g. {', '.join(unexpected[:3])})"
            )
        hint = ""
        try:
            held = _infer_config(state, source=source)
            if held != config:
                hint = (
                    f" The weights look like in_channels={held['in_channels']}, "
                    f"base_width={held['base_width']}, out_channels={held['out_channels']}."
                )
        except CheckpointError:
            hint = " The file does not look like a W-Net at all (another architecture?)."
        raise CheckpointError(
            f"{source} does not match WNet({wanted}): {'; '.join(parts)}.{hint} {fix}".rstrip()
        )
    for key, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(
                f"{source}: tensor '{key}' holds NaN or infinite values (the run diverged, or fp16 "
                "overflowed): use an earlier checkpoint."
            )
    # fp16/bf16 weights are cast up to the model's float32; num_batches_tracked stays int64.
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
    return model


# ----------------------------------------------------------------------------- saving
def weights_state(model: WNet, *, fp16: bool = False) -> dict[str, torch.Tensor]:
    """The state_dict as contiguous CPU tensors, ready for safetensors (optionally float16)."""
    state: dict[str, torch.Tensor] = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu")
        if fp16 and tensor.is_floating_point():
            tensor = tensor.to(torch.float16)
            if not torch.isfinite(tensor).all():
                raise CheckpointError(
                    f"Tensor '{key}' overflows float16 (|x| > 65504): save with fp16=False."
                )
        state[key] = tensor.contiguous()
    return state


def save_model(
    model: WNet, folder: str | os.PathLike, *, card: dict | None = None, fp16: bool = False
) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (+ ``README.md`` if ``card``) into ``folder``.

    The files are written into a temp folder next to ``folder`` and swapped in with renames,
    so a crash never leaves a half-written folder and an existing good one is not lost
    (other files already in ``folder``, e.g. a run's ``last.pt``, are kept).

    Args:
        model: the W-Net to save (any device; saved from CPU copies).
        folder: destination folder; created if needed.
        card: if given, the info dict for :func:`model_card`, written as ``README.md``.
        fp16: store floating tensors as float16 (half the size; loads back as float32).

    Returns:
        The folder path.
    """
    if not isinstance(model, WNet):
        raise TypeError(f"save_model expects a maskdepth WNet, got {type(model).__name__}")
    state = weights_state(model, fp16=fp16)
    config = dict(model.config)
    readme = model_card({"model_config": config, **(card or {})}) if card is not None else None

    def write(tmp: Path) -> None:
        save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": "pt", "config": json.dumps(config)})
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if readme is not None:
            (tmp / CARD_NAME).write_text(readme, encoding="utf-8")

    return _replace_folder(Path(folder), write)


def _replace_folder(dest: Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp)`` on a fresh temp folder beside ``dest``, then swap it in atomically."""
    if dest.exists() and not dest.is_dir():
        raise InputError(f"{dest} exists and is not a folder: choose another destination folder.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        write(tmp)
        if dest.is_dir():  # keep files we do not write (a run's last.pt, metrics.json, ...)
            for entry in dest.iterdir():
                if not (tmp / entry.name).exists():
                    _link_or_copy(entry, tmp / entry.name)
        _fsync_tree(tmp)
        if dest.is_dir():
            old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(dest, old)
            try:
                os.rename(tmp, dest)
            except OSError:
                os.rename(old, dest)  # put the good folder back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, dest)
        _fsync_dir(dest.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link (cheap for big files like last.pt), falling back to a copy."""
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True, copy_function=_link_file)
    else:
        _link_file(str(src), str(dst))


def _link_file(src: str, dst: str) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    """Make the renames durable (POSIX only; a no-op where folders cannot be opened)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- model card
_LOWER_IS_BETTER = ("rmse", "abs_rel", "absrel", "loss", "mae", "error")


def model_card(info: dict) -> str:
    """A Hugging Face model card (``README.md`` with YAML front matter) for a trained W-Net.

    Args:
        info: any of
            ``repo_id`` (for the loading snippet), ``title``, ``description``,
            ``model_config`` (WNet config dict), ``parameters`` (int),
            ``metrics`` (name -> number, may be nested: ``{"mask": {"dice": 0.9}}``),
            ``eval_split`` (what the metrics were measured on), ``losses`` (dict or str),
            ``train_config`` (dict), ``dataset`` (str), ``command`` (str).

    Keys that look like secrets (``*token*``, ``*secret*``, ``*password*``, ``*api_key*``) are
    dropped and ``hf_...`` token strings are redacted wherever they appear.
    """
    info = _scrub(info)
    repo_id = info.get("repo_id") or "owner/name"
    config = info.get("model_config") or {}
    lines = [
        "---",
        "library_name: maskdepth",
        "license: mit",
        "pipeline_tag: depth-estimation",
        "tags:",
        *(f"- {tag}" for tag in ("depth-estimation", "image-segmentation", "maskdepth", "w-net", "pytorch")),
        "---",
        "",
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
        "## Model",
        "",
    ]
    if config:
        lines.append("| config | value |")
        lines.append("| --- | --- |")
        lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in config.items()]
        lines.append("")
    params = info.get("parameters")
    if params is None and config:
        try:
            params = count_parameters(WNet(**{k: v for k, v in config.items() if k in _CONFIG_FIELDS}))
        except (TypeError, ValueError):
            params = None
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
    metrics = _flatten(info.get("metrics") or {})
    if metrics:
        lines += ["## Evaluation", ""]
        if info.get("eval_split"):
            lines += [f"Measured on {info['eval_split']}.", ""]
        from maskdepth.metrics import HIGHER_IS_BETTER, METRIC_NAMES

        lines += ["| metric | value | better |", "| --- | --- | --- |"]
        known = [k for k in METRIC_NAMES if k in metrics]  # the metrics table's order first
        for name in known + [k for k in metrics if k not in METRIC_NAMES]:
            higher = HIGHER_IS_BETTER.get(name, not any(s in name.lower() for s in _LOWER_IS_BETTER))
            label = METRIC_NAMES.get(name, name)
            lines.append(
                f"| {_cell(label)} | {_cell(_number(metrics[name]))} | {'higher' if higher else 'lower'} |"
            )
        lines.append("")
    losses, dataset, train_config = info.get("losses"), info.get("dataset"), info.get("train_config")
    if losses or dataset or train_config:
        lines += ["## Training", ""]
        if losses:
            text = (
                ", ".join(f"{k}: {v}" for k, v in losses.items())
                if isinstance(losses, Mapping)
                else str(losses)
            )
            lines += [f"Losses: {text}.", ""]
        if dataset:
            lines += [f"Dataset: {dataset}", ""]
        if train_config:
            lines += [
                "Training config:",
                "",
                "```json",
                json.dumps(train_config, indent=2, default=str),
                "```",
                "",
            ]
    if info.get("command"):
        lines += ["## Reproduce", "", "```bash", str(info["command"]), "```", ""]
    lines += [
        "## Use",
        "",
        "```python",
        "import maskdepth",
        "",
        f'model = maskdepth.load_model("{repo_id}")  # eval mode, float32',
        "```",
        "",
        "Limitations: trained on the data described above; expect approximate masks and depths on other "
        "kinds of photos.",
        "",
    ]
    return _redact_text("\n".join(lines))


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


def _scrub(obj: Any) -> Any:
    """Drop secret-looking keys and redact ``hf_...`` tokens, recursively."""
    if isinstance(obj, Mapping):
        return {k: _scrub(v) for k, v in obj.items() if not _SECRET_KEY_RE.search(str(k))}
    if isinstance(obj, (list, tuple)):
        return [_scrub(v) for v in obj]
    if isinstance(obj, str):
        return _redact_text(obj)
    return obj


def _redact_text(text: str, secrets: tuple[str | None, ...] = ()) -> str:
    """Replace ``hf_...`` tokens and the given literal secrets with ``<redacted>``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return _HF_TOKEN_RE.sub(REDACTED, text)


# ----------------------------------------------------------------------------- Hub
def push_to_hub(
    source: str | os.PathLike | WNet,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    card: dict | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload a model or a run folder to the Hub repo ``repo_id`` (created if missing).

    Args:
        source: a :class:`WNet`, a run / ``save_model`` folder (``config.json`` +
            ``model.safetensors``; ``README.md``, ``metrics.json`` and
            ``train_config.json`` go along if present), or a checkpoint file.
        repo_id: ``owner/name``.
        token: a write token (default: ``HF_TOKEN``, then the stored ``hf auth login`` token).
        private: create the repo private (ignored if it exists).
        card: info for :func:`model_card`; replaces any README.md in the folder.
        commit_message: defaults to "Upload W-Net with maskdepth".

    Returns:
        The repo URL.
    """
    _check_repo_id(repo_id)
    token = _resolve_token(token)
    endpoint = _endpoint()
    if _offline():
        raise HubError(
            "Cannot push while offline mode is on (HF_HUB_OFFLINE=1): unset HF_HUB_OFFLINE and retry."
        )
    with tempfile.TemporaryDirectory(prefix="maskdepth-push-") as staging_root:
        staging = Path(staging_root) / "repo"
        _stage(source, staging, repo_id=repo_id, card=card, token=token)
        _probe(endpoint)
        from huggingface_hub import HfApi

        from maskdepth import __version__

        api = HfApi(endpoint=endpoint, token=token, library_name="maskdepth", library_version=__version__)
        with _hub_errors(endpoint, repo_id, token=token, writing=True):
            who = api.whoami()
            role = ((who.get("auth") or {}).get("accessToken") or {}).get("role")
            if role == "read":
                raise HubError(
                    f"The token for Hub user {who.get('name')!r} is read-only: create a write token at "
                    f"{TOKENS_URL} and set HF_TOKEN (or pass token=...)."
                )
            url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            api.upload_folder(
                repo_id=repo_id,
                folder_path=staging,
                repo_type="model",
                commit_message=commit_message or "Upload W-Net with maskdepth",
            )
    logger.info("Pushed %s to %s", repo_id, url)
    return str(url)


def _stage(
    source: str | os.PathLike | WNet, staging: Path, *, repo_id: str, card: dict | None, token: str
) -> None:
    """Write exactly the files to upload into ``staging``, with secrets redacted."""
    if isinstance(source, WNet):
        save_model(source, staging, card={"repo_id": repo_id, **(card or {})})
        return
    path = Path(source)
    if path.is_file():
        save_model(load_model(path), staging, card={"repo_id": repo_id, **(card or {})})
        return
    if not path.is_dir():
        raise CheckpointError(
            f"Cannot push {str(source)!r}: no such file or folder. Pass a run folder (config.json + "
            "model.safetensors), a checkpoint file, or a WNet."
        )
    model = load_model(path)  # strict check before anything leaves the machine
    staging.mkdir(parents=True)
    shutil.copyfile(path / WEIGHTS_NAME, staging / WEIGHTS_NAME)
    # The config is re-written from the loaded model: validated values, no stray keys.
    (staging / CONFIG_NAME).write_text(
        json.dumps(model.config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    extras: dict[str, Any] = {}
    for name in RUN_EXTRAS:
        if (path / name).is_file():
            text = (path / name).read_text(encoding="utf-8")
            try:
                extras[name] = _scrub(json.loads(text))
                text = json.dumps(extras[name], indent=2) + "\n"
            except json.JSONDecodeError:
                pass
            (staging / name).write_text(_redact_text(text, (token,)), encoding="utf-8")
    if card is not None or not (path / CARD_NAME).is_file():
        # metrics.json as train.py writes it: {"best": {"metrics": {...}, ...}, "dataset": ...}
        run_metrics = extras.get("metrics.json") if isinstance(extras.get("metrics.json"), Mapping) else {}
        train_config = (
            extras.get("train_config.json") if isinstance(extras.get("train_config.json"), Mapping) else {}
        )
        best = run_metrics.get("best", run_metrics)
        best = best.get("metrics", best) if isinstance(best, Mapping) else {}
        info = {
            "repo_id": repo_id,
            "model_config": model.config,
            "metrics": best,
            "train_config": train_config or None,
            "dataset": run_metrics.get("dataset") or train_config.get("dataset"),
            **(card or {}),
        }
        readme = model_card(info)
    else:
        readme = (path / CARD_NAME).read_text(encoding="utf-8")
    (staging / CARD_NAME).write_text(_redact_text(readme, (token,)), encoding="utf-8")


def pull(
    repo_id: str, dest: str | os.PathLike, *, token: str | None = None, revision: str | None = None
) -> Path:
    """Download a Hub repo's ``config.json`` + ``model.safetensors`` (+ ``README.md``) into ``dest``.

    The download is validated by loading it strictly, then copied into ``dest`` atomically
    (see :func:`save_model`). Works from the local cache when offline.

    Returns:
        ``dest`` as a Path.
    """
    _check_repo_id(repo_id)
    snapshot = _download(repo_id, token=token, revision=revision)
    _load_folder(snapshot, source=f"Hub repo {repo_id}")

    def write(tmp: Path) -> None:
        for name in HUB_FILES:
            if (snapshot / name).is_file():
                shutil.copyfile(snapshot / name, tmp / name)  # follows the cache's symlinks

    return _replace_folder(Path(dest), write)


def is_repo_id(text: object) -> bool:
    """Whether ``text`` is a well-formed Hub repo id ``owner/name`` (the app and ``push``/``pull`` check with it)."""
    return isinstance(text, str) and bool(_REPO_ID.match(text)) and "--" not in text and ".." not in text


def _check_repo_id(repo_id: str) -> None:
    if not is_repo_id(repo_id):
        raise HubError(
            f"{repo_id!r} is not a Hub repo id: use owner/name (letters, digits, '-', '_', '.'), "
            "e.g. 'alice/maskdepth-wnet'."
        )


def _endpoint() -> str:
    """The Hub URL, read now (``HF_ENDPOINT``) rather than when huggingface_hub was imported."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _offline() -> bool:
    from huggingface_hub import constants

    return constants.is_offline_mode() or constants._is_true(os.environ.get("HF_HUB_OFFLINE"))


def _resolve_token(token: str | None) -> str:
    """The argument, else ``HF_TOKEN``, else the token stored by ``hf auth login``."""
    from huggingface_hub import get_token

    token = token or os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise HubError(
            f"No Hugging Face token found: create a write token at {TOKENS_URL} and set HF_TOKEN "
            "(or run `hf auth login`, or pass token=...)."
        )
    return token


def _probe(endpoint: str) -> None:
    """Fail in seconds if nothing answers at ``endpoint`` (the client would retry for ~30 s)."""
    import httpx2
    from huggingface_hub.utils import get_session

    try:
        get_session().head(f"{endpoint}/", timeout=PROBE_TIMEOUT_S)
    except (httpx2.TransportError, httpx2.InvalidURL) as err:
        raise HubError(
            f"Cannot reach the Hugging Face Hub at {endpoint}: check your network connection and proxy "
            f"settings{' (HF_ENDPOINT is set)' if os.environ.get('HF_ENDPOINT') else ''}, or set "
            f"HF_HUB_OFFLINE=1 to use only cached models. ({type(err).__name__})"
        ) from err


def _download(repo_id: str, *, token: str | None, revision: str | None) -> Path:
    """The cached snapshot folder of ``repo_id`` holding at least config.json + model.safetensors."""
    from huggingface_hub import constants, snapshot_download

    endpoint = _endpoint()
    offline = _offline()
    unreachable: HubError | None = None
    if not offline:
        try:
            _probe(endpoint)
        except HubError as err:
            unreachable = err
            logger.warning("%s Looking for %s in the local cache.", err, repo_id)
    with _hub_errors(
        endpoint, repo_id, token=token, revision=revision, offline=offline, unreachable=unreachable
    ):
        folder = Path(
            snapshot_download(
                repo_id,
                repo_type="model",
                revision=revision,
                allow_patterns=list(HUB_FILES),
                token=token,
                endpoint=endpoint,
                local_files_only=offline or unreachable is not None,
            )
        )
    if not (folder / WEIGHTS_NAME).is_file():
        raise HubError(
            f"Hub repo {repo_id} has no {WEIGHTS_NAME} (cache: {constants.HF_HUB_CACHE}): it was not "
            "saved by maskdepth. Push it with maskdepth.push_to_hub, or pass another repo."
        )
    return folder


@contextmanager
def _hub_errors(
    endpoint: str,
    repo_id: str,
    *,
    token: str | None,
    revision: str | None = None,
    writing: bool = False,
    offline: bool = False,
    unreachable: HubError | None = None,
) -> Iterator[None]:
    """Turn huggingface_hub / httpx errors into one-line HubErrors that name the fix."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    def fail(message: str) -> HubError:
        return HubError(_redact_text(message, (token,)))

    local = "" if Path(repo_id).exists() else f" (there is no local file or folder named {repo_id!r} either)"

    rejected = (
        f"The Hub rejected the token: create a {'write ' if writing else ''}token at {TOKENS_URL} and set "
        "HF_TOKEN (or run `hf auth login`, or pass token=...)."
    )
    try:
        yield
    except HubError:
        raise
    except ValueError as err:
        if "Invalid metadata in README.md" not in str(err):
            raise
        raise fail(
            f"The Hub rejected the README.md front matter ({' '.join(str(err).split()[4:])[:300]}): "
            "fix its YAML header, or pass card=... to write a fresh model card."
        ) from err
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as err:
        if offline or isinstance(err, OfflineModeIsEnabled):
            raise fail(
                f"Offline mode is on (HF_HUB_OFFLINE=1) and {repo_id} is not in the local cache "
                f"({constants.HF_HUB_CACHE}){local}: unset HF_HUB_OFFLINE to download it, "
                "or load a local folder.",
            ) from err
        if unreachable is not None:
            raise fail(f"{unreachable} {repo_id} is not in the local cache{local}.") from err
        cause = err.__cause__
        status = getattr(getattr(cause, "response", None), "status_code", None)
        answered = f" (it answered HTTP {status})" if status else ""
        raise fail(
            f"Cannot download {repo_id} from {endpoint}{answered} and it is not in the local cache: "
            f"{_status_fix(status)}",
        ) from err
    except (httpx2.TransportError, httpx2.InvalidURL) as err:
        raise fail(
            f"Cannot reach the Hugging Face Hub at {endpoint}: check your network connection and proxy "
            f"settings, then retry. ({type(err).__name__})",
        ) from err
    except RevisionNotFoundError as err:
        raise fail(
            f"Revision {revision!r} not found in Hub repo {repo_id}: check the branch, tag or commit."
        ) from err
    except GatedRepoError as err:
        raise fail(
            f"Hub repo {repo_id} is gated: request access on {endpoint}/{repo_id}, then retry."
        ) from err
    except RepositoryNotFoundError as err:
        if writing:
            raise fail(
                f"Repo {repo_id} not found on the Hub, or this token cannot write to it. {rejected}"
            ) from err
        raise fail(
            f"Repo {repo_id} not found on the Hub at {endpoint}{local}: check the id, or log in "
            "(HF_TOKEN / `hf auth login`) if it is private.",
        ) from err
    except RemoteEntryNotFoundError as err:
        raise fail(
            f"Hub repo {repo_id} lacks a file maskdepth needs ({err.server_message}): push it again."
        ) from err
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        server = f" Server said: {err.server_message}" if err.server_message else ""
        if status == 401:
            raise fail(f"{rejected}{server}") from err
        if status == 403:
            raise fail(
                f"The Hub refused access to {repo_id} (HTTP 403): use a write token of a user or "
                f"organisation that owns '{repo_id.split('/')[0]}' (create one at {TOKENS_URL}) "
                f"and set HF_TOKEN.{server}",
            ) from err
        raise fail(
            f"The Hub at {endpoint} answered HTTP {status} for {repo_id}: {_status_fix(status)}{server}"
        ) from err


def _status_fix(status: int | None) -> str:
    """What to do about an unexpected HTTP status (or none: a network problem)."""
    if status is None or status in (408, 429) or status >= 500:
        return "check your network connection, or retry later (the Hub may be busy or down)."
    return (
        "this server does not look like a Hugging Face Hub: check HF_ENDPOINT (unset it for huggingface.co)."
    )

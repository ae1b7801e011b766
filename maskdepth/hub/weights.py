"""Read weight files into state_dicts, never running code: safetensors and weights-only torch pickles.

A seed checkpoint is a ``torch.save`` dict ``{'epoch', 'model_state_dict', 'optimizer_state_dict',
'loss', 'acc'}`` or a bare state_dict; both are read with ``torch.load(weights_only=True)`` and
unwrapped to plain tensors (DataParallel / torch.compile key prefixes stripped). Unreadable,
truncated or code-carrying files are :class:`CheckpointError`s that say what to do.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from maskdepth.errors import CheckpointError

# The files of a saved model folder (the save_pretrained layout).
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
HUB_FILES = (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME)  # what pull / load_model fetch from a repo

__all__ = ["is_safetensors", "read_safetensors", "safetensors_metadata", "read_torch_checkpoint"]

_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel / torch.compile key prefixes


def is_safetensors(path: Path) -> bool:
    """By suffix, or by the header (8-byte little-endian length, then a JSON object)."""
    if path.suffix.lower() == ".safetensors":
        return True
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < 100_000_000


def read_safetensors(path: Path, *, source: str) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{source} is truncated or not a safetensors file ({err}): re-download it or save it again."
        ) from err


def safetensors_metadata(path: Path) -> dict[str, str]:
    """The string metadata in a safetensors header (save_model stores the config there)."""
    with safe_open(str(path), framework="pt") as f:
        return f.metadata() or {}


def read_torch_checkpoint(path: Path) -> dict[str, torch.Tensor]:
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

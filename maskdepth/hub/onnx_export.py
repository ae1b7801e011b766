"""Any W-Net this project loads, as one self-contained ONNX file for onnxruntime and friends.

The file holds the network alone, from the normalised input to the logits; its ``metadata_props``
state the contract (``maskdepth.*`` keys, see :func:`input_contract`) and docs/onnx.md shows the
pre- and post-processing that reproduces :class:`maskdepth.predict.predictor.Predictor`:

- input ``"input"`` (B, C, H, W) float32, C = 6: ``cat([bg, fg_bg])`` (3 for composite-only models),
  RGB in [0, 1] normalised by ``(x - 0.5) / 0.5``; B, H and W are dynamic, H and W multiples of 32
  (the W-Net pools five times: pad by edge replication on the right and bottom, crop the outputs);
- outputs ``"mask"`` and ``"depth"`` (B, 1, H, W): logits, in that order; a sigmoid gives the mask
  probability and the depth (near = 1, far = 0, ``DEPTH_CONVENTION``).

The graph comes from ``torch.onnx.export(dynamo=True)``, the torch.export-based exporter (the
TorchScript one is deprecated since torch 2.9); it needs ``onnxscript`` at export time and ``onnx``
for the check, both imported only here.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import torch

from maskdepth.data.geometry import DEPTH_CONVENTION
from maskdepth.data.transforms import INPUT_MEAN, INPUT_STD
from maskdepth.errors import CheckpointError, InputError
from maskdepth.fileio import atomic_path, check_writable
from maskdepth.hub.checkpoint import load_model
from maskdepth.model.wnet import WNet, WNetOutput

INPUT_NAME = "input"
OUTPUT_NAMES = list(WNetOutput._fields)  # ["mask", "depth"]: the ONNX outputs in the network's order
SIZE_MULTIPLE = 32  # five 2x poolings (maskdepth.predict.refine.NETWORK_MULTIPLE)
EXAMPLE_SHAPE = (2, 64, 96)  # batch, height, width traced: none 1 (a size 1 would be fixed) nor equal


def input_contract(model: WNet) -> dict[str, str]:
    """The ``metadata_props`` written into the ONNX file: how to feed the model and read its outputs."""
    channels = (
        "channels 0-2: the background (bg), 3-5: the same photo with the object pasted in (fg_bg)"
        if model.in_channels == 6
        else "channels 0-2: the photo with the object pasted in (fg_bg); no background"
    )
    return {
        "maskdepth.input": f"{INPUT_NAME} (B, {model.in_channels}, H, W) float32, RGB; {channels}",
        "maskdepth.normalisation": f"(x - {INPUT_MEAN}) / {INPUT_STD} of RGB values in [0, 1]",
        "maskdepth.size": (
            f"H and W multiples of {SIZE_MULTIPLE}: pad by edge replication on the right and bottom, "
            "crop the outputs back"
        ),
        "maskdepth.outputs": (
            f"{', '.join(OUTPUT_NAMES)}: (B, 1, H, W) logits, in that order; sigmoid() gives the mask "
            "probability and the depth in [0, 1]"
        ),
        "maskdepth.depth_convention": DEPTH_CONVENTION,
        "maskdepth.config": json.dumps(model.config, sort_keys=True),
        "maskdepth.preprocessing": "docs/onnx.md: the Predictor's working size, padding and crop",
    }


def export_onnx(
    model_or_source: WNet | str | os.PathLike, out_path: str | os.PathLike, *, opset: int | None = None
) -> Path:
    """Write the W-Net as one ONNX file (weights inside) at ``out_path``, checked by ``onnx.checker``.

    Args:
        model_or_source: a :class:`~maskdepth.model.wnet.WNet`, or any source
            :func:`maskdepth.hub.checkpoint.load_model` reads (a saved folder such as ``checkpoints``,
            a run folder, a ``.safetensors`` / seed checkpoint, a Hub repo id).
        out_path: the file to write (its folder is created); replaced atomically, never half-written.
        opset: the ONNX opset (default: the exporter's, 20 with torch 2.14; below 18 it is converted).

    Returns:
        ``out_path``.

    Raises:
        CheckpointError: the source is not a W-Net checkpoint. InputError: ``out_path`` cannot be written.
    """
    import onnx  # heavy, and needed only here

    out = Path(out_path)
    if out.is_dir():
        raise InputError(
            f"{out} is a folder: give a file name for the ONNX model, like {out / 'maskdepth.onnx'}"
        )
    model = _cpu_copy(model_or_source)
    _check_writable(out.parent)  # before the export, which takes seconds
    batch, height, width = EXAMPLE_SHAPE
    example = torch.rand(batch, model.in_channels, height, width, generator=torch.Generator().manual_seed(0))
    program = torch.onnx.export(
        model,
        (example,),
        input_names=[INPUT_NAME],
        output_names=OUTPUT_NAMES,
        opset_version=opset,
        dynamo=True,
        external_data=False,
        dynamic_shapes={"x": {0: "batch", 2: "height", 3: "width"}},
        verbose=False,
    )
    program.model.metadata_props.update(input_contract(model))
    program.model.doc_string = (
        "maskdepth W-Net: mask + depth logits; the input contract: metadata maskdepth.*"
    )
    try:
        with atomic_path(out) as tmp:
            program.save(tmp, external_data=False)
            onnx.checker.check_model(str(tmp), full_check=True)
    except OSError as e:  # the disk filled up, the folder went away: the temp file is removed
        raise InputError(
            f"cannot write {out} ({e.strerror or e}): choose another folder or free some space"
        ) from e
    return out


def _check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and prove a file can be written there, or raise InputError."""
    try:
        check_writable(folder)
    except OSError as e:
        raise InputError(
            f"cannot write into {folder} ({e.strerror or e}): choose a folder you can write to"
        ) from e


def _cpu_copy(model_or_source: WNet | str | os.PathLike) -> WNet:
    """A float32 CPU copy in eval mode (the caller's model keeps its device, dtype and mode)."""
    if isinstance(model_or_source, WNet):
        return copy.deepcopy(model_or_source).float().cpu().eval()
    if isinstance(model_or_source, (str, os.PathLike)):
        return load_model(model_or_source, device="cpu")
    raise CheckpointError(
        f"cannot export a {type(model_or_source).__name__}: pass a maskdepth WNet, a saved model folder, "
        "a checkpoint file or a Hub repo id"
    )

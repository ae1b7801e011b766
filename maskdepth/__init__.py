"""maskdepth: mask + depth prediction from a background and a composite (the seed's W-Net)."""

from maskdepth.errors import (
    CheckpointError,
    DatasetError,
    HubError,
    InputError,
    MaskDepthError,
    TrainingError,
)
from maskdepth.model import WNet, WNetOutput

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "DatasetError",
    "HubError",
    "InputError",
    "MaskDepthError",
    "TrainingError",
    "WNet",
    "WNetOutput",
    "load_model",
]


def load_model(source, **kwargs):
    """Load a WNet from a folder, a Hub repo id or a seed checkpoint (see maskdepth.hub)."""
    from maskdepth.hub import load_model as _load_model

    return _load_model(source, **kwargs)

"""maskdepth: mask + depth prediction from a background and a composite (the seed's W-Net)."""

__version__ = "0.1.0"

from maskdepth.card import build_card, model_card  # noqa: E402
from maskdepth.checkpoint import load_model, save_model  # noqa: E402
from maskdepth.errors import (  # noqa: E402
    CheckpointError,
    DatasetError,
    HubError,
    InputError,
    MaskDepthError,
    TrainingError,
)
from maskdepth.hub import publish_space, pull, push_to_hub  # noqa: E402
from maskdepth.model import WNet, WNetConfig, WNetOutput  # noqa: E402

__all__ = [
    "CheckpointError",
    "DatasetError",
    "HubError",
    "InputError",
    "MaskDepthError",
    "TrainingError",
    "WNet",
    "WNetConfig",
    "WNetOutput",
    "build_card",
    "load_model",
    "model_card",
    "publish_space",
    "pull",
    "push_to_hub",
    "save_model",
]

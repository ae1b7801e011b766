"""maskdepth: mask + depth prediction from a background and a composite (the seed's W-Net).

The package, by concern: :mod:`maskdepth.model` (network, losses, metrics), :mod:`maskdepth.data`
(datasets), :mod:`maskdepth.training` (settings, loop, evaluation), :mod:`maskdepth.predict` (the
predictor), :mod:`maskdepth.compare` (loss-variant comparisons), :mod:`maskdepth.hub` (weights and the
Hub), :mod:`maskdepth.ui` (the app); shared by all: ``errors``, ``naming``, ``fileio``, ``imageio``.
``from maskdepth import WNet, Predictor, load_model, train`` are the public entry points.
"""

__version__ = "0.1.0"

from maskdepth.errors import (  # noqa: E402
    CheckpointError,
    DatasetError,
    HubError,
    InputError,
    MaskDepthError,
    TrainingError,
)
from maskdepth.hub.card import build_card, model_card  # noqa: E402
from maskdepth.hub.checkpoint import save_model  # noqa: E402
from maskdepth.hub.pretrained import WNet, load_model  # noqa: E402
from maskdepth.hub.transfer import publish_space, pull, push_to_hub  # noqa: E402
from maskdepth.model.wnet import WNetConfig, WNetOutput  # noqa: E402


def __getattr__(name: str):  # the heavier entry points load on first use
    if name == "Predictor":
        from maskdepth.predict.predictor import Predictor

        return Predictor
    if name in ("train", "TrainConfig"):
        from maskdepth.training import config, loop

        return loop.train if name == "train" else config.TrainConfig
    raise AttributeError(f"module 'maskdepth' has no attribute {name!r}")


__all__ = [
    "Predictor",
    "TrainConfig",
    "train",
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

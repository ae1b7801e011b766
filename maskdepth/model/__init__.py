"""The network and what it is scored by.

- :mod:`~maskdepth.model.wnet`: the seed's W-Net (``WNet``, ``WNetConfig``, ``WNetOutput``), architecture only;
- :mod:`~maskdepth.model.losses`: the named mask and depth losses and ``score_batch``;
- :mod:`~maskdepth.model.metrics`: per-image metrics, their accumulator and table.

May import: torch, ``maskdepth.errors``. Nothing here reads files or talks to the Hub.
"""

from __future__ import annotations

import importlib
from typing import Any

# Public names, imported on first use so that importing one module of the package stays light.
_EXPORTS = {
    "WNet": "maskdepth.model.wnet",
    "WNetConfig": "maskdepth.model.wnet",
    "WNetOutput": "maskdepth.model.wnet",
    "LossConfig": "maskdepth.model.losses",
    "METRIC_NAMES": "maskdepth.model.metrics",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)

"""The network and what it is scored by.

- :mod:`~maskdepth.model.wnet`: the seed's W-Net (``WNet``, ``WNetConfig``, ``WNetOutput``), architecture only;
- :mod:`~maskdepth.model.losses`: the named mask and depth losses and ``score_batch``;
- :mod:`~maskdepth.model.metrics`: per-image metrics, their accumulator and table.

May import: torch, ``maskdepth.errors``. Nothing here reads files or talks to the Hub.
"""

from __future__ import annotations

from maskdepth.lazy import lazy_exports

# Public names, imported on first use (maskdepth.lazy).
_EXPORTS = {
    "WNet": "maskdepth.model.wnet",
    "WNetConfig": "maskdepth.model.wnet",
    "WNetOutput": "maskdepth.model.wnet",
    "LossConfig": "maskdepth.model.losses",
    "METRIC_NAMES": "maskdepth.model.metrics",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)

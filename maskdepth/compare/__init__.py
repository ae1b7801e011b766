"""Comparing loss variants: every variant trained with the same seeds, data and budget.

- :mod:`~maskdepth.compare.comparison`: ``run_comparison``, ``load_comparison``, ``ComparisonResult``;
- :mod:`~maskdepth.compare.variants`: what each variant changes; :mod:`~maskdepth.compare.stats`: paired
  intervals and the verdict; :mod:`~maskdepth.compare.gallery`: each variant's predictions side by side.

May import: ``maskdepth.training``, ``maskdepth.model``, ``maskdepth.predict``, ``maskdepth.data``, the shared modules.
"""

from __future__ import annotations

import importlib
from typing import Any

# Public names, imported on first use so that importing one module of the package stays light.
_EXPORTS = {
    "run_comparison": "maskdepth.compare.comparison",
    "load_comparison": "maskdepth.compare.comparison",
    "VARIANTS": "maskdepth.compare.variants",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)

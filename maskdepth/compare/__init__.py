"""Comparing loss variants: every variant trained with the same seeds, data and budget.

- :mod:`~maskdepth.compare.comparison`: ``run_comparison``, ``load_comparison``, ``ComparisonResult``;
- :mod:`~maskdepth.compare.variants`: what each variant changes; :mod:`~maskdepth.compare.stats`: paired
  intervals and the verdict; :mod:`~maskdepth.compare.gallery`: each variant's predictions side by side.

May import: ``maskdepth.training``, ``maskdepth.model``, ``maskdepth.predict``, ``maskdepth.data``, the shared modules.
"""

from __future__ import annotations

from maskdepth.lazy import lazy_exports

# Public names, imported on first use (maskdepth.lazy).
_EXPORTS = {
    "run_comparison": "maskdepth.compare.comparison",
    "load_comparison": "maskdepth.compare.comparison",
    "VARIANTS": "maskdepth.compare.variants",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)

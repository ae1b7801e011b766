"""Prediction on any pair of photos: the predictor, its working resolution and refinement.

- :mod:`~maskdepth.predict.predictor`: ``Predictor``, ``Prediction`` (every pair registered first: :mod:`maskdepth.align`);
- :mod:`~maskdepth.predict.views`: where the depth comes from (whole-scene views, their ensemble);
- :mod:`~maskdepth.predict.outputs`: ``save_prediction``, the depth colour map, the mask overlay;
- :mod:`~maskdepth.predict.cloud`: the depth as a 3D point cloud and its PLY file;
- :mod:`~maskdepth.predict.refine`: the working size, padding, guided upsampling to the photo's size.

May import: ``maskdepth.align``, ``maskdepth.model``, ``maskdepth.hub`` (to load weights), ``maskdepth.data.transforms``, the shared modules.
"""

from __future__ import annotations

from maskdepth.lazy import lazy_exports

# Public names, imported on first use (maskdepth.lazy).
_EXPORTS = {
    "Predictor": "maskdepth.predict.predictor",
    "Prediction": "maskdepth.predict.predictor",
    "save_prediction": "maskdepth.predict.outputs",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)

"""Weights on disk and on the Hugging Face Hub.

- :mod:`~maskdepth.hub.weights`: reading weight files without running code, the folder's file names;
- :mod:`~maskdepth.hub.checkpoint`: ``load_model`` / ``save_model`` (folders, seed checkpoints, Hub ids);
- :mod:`~maskdepth.hub.card`: model cards; :mod:`~maskdepth.hub.api`: endpoint, token, errors;
  :mod:`~maskdepth.hub.download`, :mod:`~maskdepth.hub.transfer`: fetching, pushing, publishing a Space;
- :mod:`~maskdepth.hub.pretrained`: ``maskdepth.WNet``, the W-Net with ``from_pretrained`` / ``push_to_hub``.

May import: ``maskdepth.model``, the shared modules. Never the training loop, the predictor or the app.
"""

from __future__ import annotations

from maskdepth.lazy import lazy_exports

# Public names, imported on first use (maskdepth.lazy).
_EXPORTS = {
    "WNet": "maskdepth.hub.pretrained",
    "load_model": "maskdepth.hub.pretrained",
    "save_model": "maskdepth.hub.checkpoint",
    "push_to_hub": "maskdepth.hub.transfer",
    "pull": "maskdepth.hub.transfer",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)

"""The Gradio app, one module per tab; ``app.py`` at the repo root only assembles and launches it.

- :mod:`maskdepth.ui.common`: folders, model pickers, the predictor cache, the one-training slot,
  path allow-listing, errors -> ``gr.Error``.
- :mod:`maskdepth.ui.predict_tab`, :mod:`~maskdepth.ui.train_tab`, :mod:`~maskdepth.ui.compare_tab`,
  :mod:`~maskdepth.ui.models_tab`: each has ``build(ctx)`` (layout + events) and plain handlers.
"""

from maskdepth.ui.common import AppContext

__all__ = ["AppContext"]

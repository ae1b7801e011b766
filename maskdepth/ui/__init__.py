"""The Gradio app, one module per tab; ``app.py`` at the repo root only assembles and launches it.

- :mod:`maskdepth.ui.context`: an app's folders, the Space path policy, the model pickers.
- :mod:`maskdepth.ui.errors`: errors -> ``gr.Error``; :mod:`maskdepth.ui.uploads`: undecoded image uploads.
- :mod:`maskdepth.ui.predictors`: the predictor cache and the ZeroGPU decorator;
  :mod:`maskdepth.ui.outputs`: per-request output folders.
- :mod:`maskdepth.ui.jobs`: the one-training slot, jobs that outlive their page, the thread a comparison
  streams from; :mod:`maskdepth.ui.train_run`: a training as a job (start, watch, re-attach);
  :mod:`maskdepth.ui.live`: the live view of a run (progress, curves, samples), for Train and Compare.
- :mod:`maskdepth.ui.visitors`: who a request is from (one owner locally; on a Space each visitor,
  with a runs folder of their own).
- :mod:`maskdepth.ui.predict_tab`, :mod:`~maskdepth.ui.train_tab`, :mod:`~maskdepth.ui.compare_tab`,
  :mod:`~maskdepth.ui.models_tab`: each has ``build(ctx)`` (layout + events) and plain handlers;
  :mod:`~maskdepth.ui.cloud_view`: the Predict tab's 3D view (the point cloud, re-rendered without the model);
  :mod:`~maskdepth.ui.result_files`: what a prediction shows, written into its request's folder.
"""

from maskdepth.ui.context import AppContext

__all__ = ["AppContext"]

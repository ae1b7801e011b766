"""Training: the settings, the one loop, its schedule, run folder and evaluation.

- :mod:`~maskdepth.training.config`: ``TrainConfig``, every setting once; :mod:`~maskdepth.training.settings`:
  the same settings as CLI flags and Train-tab controls; :mod:`~maskdepth.training.recipes`: named recipe files;
- :mod:`~maskdepth.training.loop`: ``train(cfg, on_event, stop)``; :mod:`~maskdepth.training.schedule`:
  optimiser, learning rate and budget; :mod:`~maskdepth.training.events`: what the loop reports;
- :mod:`~maskdepth.training.run_writer`, :mod:`~maskdepth.training.runs`: a run folder's files, finding runs;
- :mod:`~maskdepth.training.evaluate`: held-out evaluation; :mod:`~maskdepth.training.precision`,
  :mod:`~maskdepth.training.distributed`: bf16 and torchrun.

May import: ``maskdepth.model``, ``maskdepth.data``, ``maskdepth.hub`` (to save and load weights), the shared modules.
"""

from __future__ import annotations

from maskdepth.lazy import lazy_exports

# Public names, imported on first use (maskdepth.lazy).
_EXPORTS = {
    "TrainConfig": "maskdepth.training.config",
    "train": "maskdepth.training.loop",
    "evaluate": "maskdepth.training.evaluate",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)

"""Registering two photos of one scene: the background shot mapped onto the composite's pixel grid.

- :mod:`~maskdepth.align.register`: ``register(bg, fg_bg)``, what the predictor calls: the fit, or a pair too
  plain to match taken as it was shot when it clearly is one scene;
- :mod:`~maskdepth.align.fit`: ``fit_alignment(bg, fg_bg) -> Alignment`` (features, a robust homography
  refined on tracked corners, plausibility checks; ``AlignmentError`` when the photos are not one scene);
- :mod:`~maskdepth.align.geometry`: homographies between pixel grids; :mod:`~maskdepth.align.colour`:
  the background's exposure and white balance matched to the composite's.

Used by the predictor (every pair goes through it) and by the data generator (pairs as a registration
leaves them). May import: numpy, OpenCV, ``maskdepth.errors``; nothing else of maskdepth.
"""

from maskdepth.align.fit import Alignment, AlignmentError, fit_alignment
from maskdepth.align.register import register

__all__ = ["Alignment", "AlignmentError", "fit_alignment", "register"]

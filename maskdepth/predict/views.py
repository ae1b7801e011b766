"""Where a prediction's depth comes from: whole-scene views at the sizes the model trained at.

The W-Net's depth needs the whole scene inside its receptive field at a scale it trained at, and
one such view is noisy on real photos. The default "ensemble" ranks the pixels by the mean of
views at every multiple of DEPTH_VIEW_STEP across the trained range, each with its mirror image,
and gives them the depth values of the view nearest DEPTH_REFERENCE px (the single view's absolute
depth); measured in BENCHMARKS.md ("Depth on real scenes") and docs/research.md. The views run the
depth branch alone (:meth:`maskdepth.model.wnet.WNet.depth_logits`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from maskdepth.errors import InputError
from maskdepth.predict.refine import working_size

MAX_RESOLUTION = 2048
# "ensemble", a number (one view of that long side, capped at the largest trained size) or None (the
# working forward's own depth).
DEPTH_VIEW: int | str | None = "ensemble"
DEPTH_REFERENCE = 128
DEPTH_VIEW_STEP = 32  # the ensemble's view sides: the multiples of this within the trained range

# (bg or None, fg_bg) batches (B, 3, h, w) -> depth probabilities (B, 1, h, w)
DepthForward = Callable[[torch.Tensor | None, torch.Tensor], torch.Tensor]


def parse_depth_view(value: int | str | None) -> int | str | None:
    """A depth view setting (DEPTH_VIEW) from code or the command line: "ensemble", a number of pixels,
    or None / "none" (the working forward's own depth)."""
    text = "none" if value is None else str(value).strip().lower()
    if text in ("none", "ensemble"):
        return None if text == "none" else text
    if text.isdigit() and 32 <= int(text) <= MAX_RESOLUTION:
        return int(text)
    raise InputError(
        f"unknown depth view {value!r}: use 'ensemble' (the default: several views averaged, the best on "
        f"real photos), a number of pixels 32..{MAX_RESOLUTION} (one view, about twice as fast) or 'none' "
        "(the depth of the working-size forward itself)"
    )


def rank_matched(order: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """(B, 1, h, w): ``values``' own numbers put in the pixel order of ``order`` (histogram matching):
    per image, the pixel that ranks k-th in ``order`` gets the k-th smallest number of ``values``."""
    flat = order.flatten(1)
    out = torch.empty_like(flat)
    out.scatter_(1, flat.argsort(1), values.flatten(1).sort(1).values)
    return out.view_as(order)


def view_sizes(
    size: tuple[int, int], size_range: tuple[int, int], depth_view: int | str | None
) -> list[tuple[int, int]]:
    """(w, h) of each whole-scene view the depth of a ``size`` working forward is taken from.

    Never larger than the largest size the model trained at (``size_range``; a view larger than the
    model ever saw skews its depth scale), nor, for the ensemble, than ``size`` itself (no view is an
    enlargement). ``[size]`` means the working forward's own depth (``depth_view`` None, or already
    small enough).
    """
    low, high = size_range
    if depth_view is None:
        return [size]
    if depth_view == "ensemble":
        top = min(high, max(size))
        first = -(-low // DEPTH_VIEW_STEP) * DEPTH_VIEW_STEP
        sides = list(range(first, top + 1, DEPTH_VIEW_STEP)) or [top]
        return [working_size(*size, side, low) for side in sides]
    cap = min(int(depth_view), high)
    return [size] if max(size) <= cap else [working_size(*size, cap, low)]


def depth_from_views(
    forward: DepthForward,
    bg: torch.Tensor | None,
    fg: torch.Tensor,
    sizes: list[tuple[int, int]],
    own: torch.Tensor | None,
    mirrored: bool,
) -> torch.Tensor:
    """The depth at the working size (B, 1, h, w) from views at ``sizes``, shrunk from the working-size
    tensors (a 12-24 MP photo is resized once); with ``mirrored`` (the ensemble) each view is averaged
    with its mirror image, then the pixels are ranked by the mean over the views and given the values
    of the view nearest DEPTH_REFERENCE px. ``own`` is the working forward's depth when ``sizes`` holds
    its size (None: not computed)."""
    n, (h, w) = fg.shape[0], fg.shape[-2:]
    views = []
    for vw, vh in sizes:
        if (vh, vw) == (h, w) and own is not None:  # the working forward is this view
            vbg, vfg, view = bg, fg, own
        else:
            vbg, vfg = (
                None if t is None else F.interpolate(t, size=(vh, vw), mode="bilinear", antialias=True)
                for t in (bg, fg)
            )
            view = None
        if mirrored and view is None:  # the view and its mirror image in one batch: cheaper than two
            both = forward(*(None if t is None else torch.cat([t, t.flip(-1)]) for t in (vbg, vfg)))
            view = (both[:n] + both[n:].flip(-1)) / 2
        elif mirrored:
            flip = forward(*(None if t is None else t.flip(-1) for t in (vbg, vfg)))
            view = (view + flip.flip(-1)) / 2
        elif view is None:
            view = forward(vbg, vfg)
        views.append(F.interpolate(view, size=(h, w), mode="bilinear", align_corners=False))
    if len(views) == 1:
        return views[0]
    # The order of the pixels from the mean of the views, the numbers from the reference view: views
    # of other sizes put a scene at other depth scales, so their plain mean loses the absolute depth.
    ref = min(range(len(sizes)), key=lambda i: abs(max(sizes[i]) - DEPTH_REFERENCE))
    return rank_matched(torch.stack(views).mean(0), views[ref])

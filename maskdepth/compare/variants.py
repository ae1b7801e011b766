"""The comparison's variants: what each changes from the base config, and what that change does.

``about`` describes the loss or schedule (what it computes); what it does to the numbers is
measured (:mod:`maskdepth.compare.stats`), never written here in advance.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Variant:
    """One entry of the comparison: what changes from the base config, and what that change does."""

    description: str
    overrides: dict = field(default_factory=dict)
    resume_from: str | None = None  # name of a helper run whose last.pt this variant resumes
    about: str = ""  # what the loss or schedule computes: a description, never a prediction of the result


VARIANTS: dict[str, Variant] = {
    "bce|bce": Variant(
        "(i) seed: BCE mask + BCE depth",
        {"mask_loss": "bce", "depth_loss": "bce"},
        about="BCE scores every pixel on its own against its target value; no term looks at neighbours.",
    ),
    "bce|bce parts": Variant(
        "(ii) seed: BCE + BCE trained part by part over 3 dataset parts, best weights carried over",
        {"mask_loss": "bce", "depth_loss": "bce", "parts": 3},
        about="The train split is cut into 3 parts seen one after another, a third of the steps each.",
    ),
    "bce|ssim": Variant(
        "(iii) seed: BCE mask + SSIM depth",
        {"mask_loss": "bce", "depth_loss": "ssim"},
        about="SSIM compares local means, contrasts and correlations in 11x11 windows: the depth map's "
        "structure rather than each pixel's value.",
    ),
    "bce|ssim+bce": Variant(
        "BCE mask + (1 x BCE + 2 x SSIM) depth",
        {"mask_loss": "bce", "depth_loss": "ssim+bce"},
        about="SSIM's windowed structure term plus per-pixel BCE on the values (the seed's combination).",
    ),
    "bce|rmse": Variant(
        "BCE mask + RMSE depth",
        {"mask_loss": "bce", "depth_loss": "rmse"},
        about="RMSE squares each pixel's depth error, so the largest errors weigh most.",
    ),
    "dice|bce": Variant(
        "Dice mask + BCE depth",
        {"mask_loss": "dice", "depth_loss": "bce"},
        about="Soft Dice scores the overlap of the whole predicted mask with the target, per image.",
    ),
    "resume continue-lr": Variant(
        "BCE + BCE: half the budget, then resumed with the lr continuing where it stopped",
        {"mask_loss": "bce", "depth_loss": "bce", "resume_lr": "continue"},
        resume_from="half",
        about="OneCycle over the first half ends near lr/1e4; the resumed half anneals on from there.",
    ),
    "resume restart-lr": Variant(
        "BCE + BCE: half the budget, then resumed with the lr restarted from its initial value",
        {"mask_loss": "bce", "depth_loss": "bce", "resume_lr": "restart"},
        resume_from="half",
        about="The resumed half runs a fresh OneCycle: warm-up to the peak lr again, then anneal.",
    ),
}
BASELINE = "bce|bce"  # every other variant is paired with this one (the first chosen if it is absent)
LR_PAIR = ("resume continue-lr", "resume restart-lr")

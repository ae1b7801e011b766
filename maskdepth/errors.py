"""Errors a user can cause. Each message says what is wrong and how to fix it.

The app shows them as ``gr.Error``; the CLI prints them on one line and exits with 2.
"""


class MaskDepthError(Exception):
    """Base class for user-facing errors."""


class InputError(MaskDepthError):
    """An image or argument the user gave cannot be used."""


class DatasetError(MaskDepthError):
    """A dataset folder or zip is missing files, unreadable, or unsafe."""


class CheckpointError(MaskDepthError):
    """A weights file or folder cannot be loaded into a WNet."""


class HubError(MaskDepthError):
    """A Hugging Face Hub call failed (no network, bad token, missing repo)."""


class TrainingError(MaskDepthError):
    """Training cannot start or had to stop (bad config, NaN loss, disk full)."""

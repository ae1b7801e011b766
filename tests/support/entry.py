"""One case, two ways in: the app's Predict handler (``AppEntry``) or ``python -m maskdepth predict``
in-process (``CliEntry``). ``conftest.py``'s ``entry`` fixture gives each test both, one at a time."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from maskdepth.__main__ import main as cli

from .ui import DEFAULT_CHOICE, AppContext, gr_message, gradio_errors, predict_tab

CLI_OUTPUTS = ("mask.png", "depth.png", "depth16.png", "depth_color.png")


def predict_args(model: Path, image: Path, bg: Path, out: Path) -> list[str]:
    """The argv of ``python -m maskdepth predict`` (after the program name) for one model and inputs."""
    return ["predict", "--model", str(model), "--image", str(image), "--bg", str(bg), "--out", str(out)]


def cli_error(args: list[str], capsys: pytest.CaptureFixture, *, progress: bool = False) -> str:
    """Run the CLI in-process; it must exit 2 with exactly one ``error:`` line on stderr.

    With ``progress``, the lines of a progress bar drawn before the failure may precede it.
    """
    capsys.readouterr()
    code = cli(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = [line for line in err.splitlines() if "error" in line] if progress else err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@dataclass
class Predicted:
    """What a successful prediction gave the user."""

    files: list[Path]  # every image written
    resized_note: bool  # whether the user was told an input was resized


class AppEntry:
    """The Predict tab's handler, called as the app calls it (errors wrapped by ``gradio_errors``)."""

    name = "app"

    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    def _model(self, model: Path | None) -> str:
        return DEFAULT_CHOICE if model is None else str(model)

    def predict(self, fg: Path, bg: Path, out: Path, model: Path | None = None) -> Predicted:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outputs = predict_tab.predict(str(bg), str(fg), self._model(model), ctx=self.ctx)
        overlay, color, (before, _), *files, _ran_at, _scene, _aligned, _view = outputs
        notes = [
            str(w.message) for w in caught if "resized" in str(w.message)
        ]  # gr.Warning outside a request
        return Predicted([Path(p) for p in (overlay, color, before, *files)], bool(notes))

    def predict_error(self, fg: Path, bg: Path, out: Path, model: Path | None = None) -> str:
        """The one-line ``gr.Error`` the user sees."""
        return gr_message(
            lambda: gradio_errors(predict_tab.predict)(str(bg), str(fg), self._model(model), ctx=self.ctx)
        )

    def model_errors(self, source: Path, image: Path, out: Path) -> list[str]:
        """What the user is told about a bad model: the prediction's error and the picker's inline note."""
        message = self.predict_error(image, image, out, model=source)
        info, _ = predict_tab.model_info(str(source), ctx=self.ctx)  # an inline note, not a pop-up
        assert info.startswith("⚠️"), info
        return [message, info]


class CliEntry:
    """``python -m maskdepth predict`` run in-process, the shipped model being ``shipped``."""

    name = "cli"

    def __init__(self, shipped: Path, capsys: pytest.CaptureFixture):
        self.shipped = shipped
        self.capsys = capsys

    def _args(self, fg: Path, bg: Path, out: Path, model: Path | None) -> list[str]:
        return predict_args(self.shipped if model is None else model, fg, bg, out)

    def predict(self, fg: Path, bg: Path, out: Path, model: Path | None = None) -> Predicted:
        code = cli(self._args(fg, bg, out, model))
        err = self.capsys.readouterr().err
        assert code == 0, err
        return Predicted([out / name for name in CLI_OUTPUTS], "note (" in err and "resized" in err)

    def predict_error(self, fg: Path, bg: Path, out: Path, model: Path | None = None) -> str:
        """The one ``error:`` line (exit code 2); nothing half-written."""
        line = cli_error(self._args(fg, bg, out, model), self.capsys)
        assert not out.exists()  # nothing half-written
        return line

    def model_errors(self, source: Path, image: Path, out: Path) -> list[str]:
        """What the user is told about a bad model: the one error line."""
        return [self.predict_error(image, image, out, model=source)]

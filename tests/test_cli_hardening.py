"""Hardening (issue 5), the CLI: a command that cannot do its job says why in one ``error:`` line
(exit code 2) and leaves nothing behind. Bad uploads on ``predict``: test_imageio_hardening.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.entry import cli_error, predict_args
from support.files import tree, write_text
from support.models import write_image

pytestmark = pytest.mark.usefixtures("training_slot_free")


def test_cli_output_folder_that_cannot_be_written(
    shipped: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    image, blocker = write_image(tmp_path / "c.png", 40, 30), write_text(tmp_path / "a-file", "x")
    line = cli_error(
        predict_args(shipped, image, image, blocker),
        capsys,
    )
    assert "cannot write the outputs into" in line and "a-file" in line


TINY_TRAIN = ["--backgrounds", "2", "--foregrounds", "2", "--positions", "2", "--size", "32", "--base-width", "4",
              "--batch-size", "4", "--eval-samples", "4", "--steps", "1"]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["export-data", "-n", "2", "--size", "32", "--out", "{file}/sub"], "File exists", id="export-under-a-file"),
        pytest.param(["compare", *TINY_TRAIN, "--variants", "bce|bce", "--out", "{file}"], "File exists", id="compare-onto-a-file"),
        pytest.param(["train", *TINY_TRAIN, "--dataset", "{tmp}/nowhere", "--out", "{tmp}/runs/x"], "is not a folder", id="train-missing-dataset"),
        pytest.param(["train", *TINY_TRAIN, "--resume", "{file}", "--out", "{tmp}/runs/x"], "not a PyTorch checkpoint", id="train-resume-garbage"),
        pytest.param(["train", *TINY_TRAIN, "--resume", "{tmp}/broken-run", "--out", "{tmp}/runs/x"], "last.pt to resume", id="train-resume-broken-last.pt"),
        pytest.param(["evaluate", "--model", "{file}"], "not a PyTorch checkpoint", id="evaluate-garbage"),
        pytest.param(["save", "{file}", "--out", "{tmp}/saved"], "not a PyTorch checkpoint", id="save-garbage"),
        pytest.param(["pull", "bad..id", "--out", "{tmp}/pulled"], "not a Hub repo id", id="pull-bad-id"),
        pytest.param(["push", "{tmp}/nowhere", "alice/wnet"], "No Hugging Face token", id="push-without-token"),
    ],
)  # fmt: skip
def test_other_cli_commands_fail_in_one_line_and_leave_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], needle: str
) -> None:
    blocker = write_text(tmp_path / "a-file", "not a folder, not a checkpoint")
    (tmp_path / "broken-run").mkdir()
    write_text(tmp_path / "broken-run" / "last.pt", "cut short")
    before = tree(tmp_path)
    line = cli_error([a.format(file=blocker, tmp=tmp_path) for a in args], capsys, progress=True)
    assert needle in line, line
    made = {"runs": "dir"} if "{tmp}/runs/x" in args else {}  # the parent of --out; no half-made run in it
    assert tree(tmp_path) == before | made

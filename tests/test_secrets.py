"""Hardening (issue 5), secrets: HF_TOKEN never shows in the app, is never logged or printed, never
written to disk - through the app's handlers, the CLI and the (fake) Hub, which rejects it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
import pytest
from support.entry import predict_args
from support.models import write_image
from support.ui import DEFAULT_CHOICE, gradio_errors, make_ctx, models_tab, predict_tab, train_stream

from maskdepth.__main__ import main as cli

pytestmark = pytest.mark.usefixtures("training_slot_free")


FAKE_TOKEN = "hf_FAKEtoken1234567890abcdef"


def _text(value: Any) -> str:
    """Everything a handler returned, as text (tables and arrays included)."""
    if isinstance(value, pd.DataFrame):
        return value.to_csv()
    if isinstance(value, np.ndarray):
        return value.tobytes().decode("latin-1")
    if isinstance(value, (list, tuple)):
        return "\n".join(_text(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(f"{k}={_text(v)}" for k, v in value.items())
    return str(value)


@pytest.fixture
def hub_token() -> str:
    """The fake Hub knows another token than HF_TOKEN, so every call with ours is rejected."""
    return "the-real-token-0000"


def test_the_token_never_appears(
    tmp_path: Path,
    shipped: Path,
    fake_hub: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
) -> None:
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    caplog.set_level(logging.DEBUG)
    ctx = make_ctx(tmp_path / "app", shipped)
    image = write_image(tmp_path / "c.png", 40, 30)
    shown: list[str] = []

    def ui(call: Callable[[], Any]) -> None:
        try:
            result = call()
            shown.append(_text(list(result) if isinstance(result, Iterator) else result))
        except gr.Error as err:
            shown.append(err.message)

    # The app: predict, pick a model, train (run folder, card), load from and push to the (fake) Hub.
    ui(lambda: gradio_errors(predict_tab.predict)(str(image), str(image), DEFAULT_CHOICE, ctx=ctx))
    ui(lambda: predict_tab.model_info(DEFAULT_CHOICE, ctx=ctx))
    ui(lambda: train_stream(ctx, run_name="secret-run"))
    run = next(r for r in ctx.runs() if r.name.endswith("-secret-run"))
    ui(lambda: gradio_errors(models_tab.load_from_hub)(ctx, "alice/wnet"))
    ui(lambda: gradio_errors(models_tab.push)(ctx, run.name, "alice/wnet", False))
    ctx.on_space = True  # a signed-in visitor's token takes the same path
    visitor = gr.OAuthToken(token=FAKE_TOKEN, scope="write-repos", expires_at=0)
    ui(lambda: gradio_errors(models_tab.push)(ctx, run.name, "alice/wnet", False, visitor))
    ui(lambda: gradio_errors(models_tab.load_from_hub)(ctx, "alice/wnet", visitor))
    ctx.on_space = False
    assert any("rejected the token" in s for s in shown), shown
    # The CLI: predict, train, compare (results.json), push and pull (both rejected).
    cli_runs = tmp_path / "cli"
    tiny = ["--backgrounds", "2", "--foregrounds", "2", "--positions", "2", "--base-width", "4", "--size", "32",
            "--batch-size", "4", "--eval-samples", "4", "--steps", "2"]  # fmt: skip
    codes = [
        cli(predict_args(shipped, image, image, cli_runs / "p")),
        cli(["train", *tiny, "--out", str(cli_runs / "run")]),
        cli(["compare", *tiny, "--variants", "bce|bce", "--out", str(cli_runs / "compare")]),
        cli(["push", str(cli_runs / "run"), "alice/wnet"]),
        cli(["pull", "alice/wnet", "--out", str(cli_runs / "pulled")]),
    ]
    assert codes == [0, 0, 0, 2, 2]
    out, err = capfd.readouterr()
    assert "rejected the token" in err
    # Every record file exists (so the grep below really read them) ...
    for folder in (run.path, cli_runs / "run"):
        for name in ("train_config.json", "metrics.json", "card.json", "README.md", "config.json"):
            assert (folder / name).is_file(), folder / name
    assert (cli_runs / "compare" / "results.json").is_file()
    # ... and the token is nowhere: not shown, not logged, not printed, not on disk.
    assert FAKE_TOKEN not in "\n".join(shown)
    assert caplog.records  # the app, the CLI and the Hub client did log
    assert FAKE_TOKEN not in caplog.text and not [r for r in caplog.records if FAKE_TOKEN in r.getMessage()]
    assert FAKE_TOKEN not in out and FAKE_TOKEN not in err
    needle = FAKE_TOKEN.encode()
    homes = [tmp_path, Path(os.environ["HF_HOME"])]
    leaks = [p for home in homes for p in home.rglob("*") if p.is_file() and needle in p.read_bytes()]
    assert leaks == []

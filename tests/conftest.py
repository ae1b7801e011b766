"""Shared test setup and fixtures.

Every test gets its own Hugging Face home (cache, token file) in a temp dir, the session its own
maskdepth cache dir (auto precision's measurements), and every test module runs with one torch
thread. Fixtures: ``shipped`` / ``ctx`` (a tiny "shipped" model and an app context on it),
``entry`` (one case through the app or the CLI), ``online`` / ``hub_token`` / ``fake_hub`` (the
local fake Hub), ``training_slot_free``. Helper code lives in ``tests/support/``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.fakehub import DEFAULT_TOKEN, FakeHub
from support.models import tiny_model, torch_threads


@pytest.fixture(autouse=True)
def _isolated_hf_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point HF_HOME (and the paths huggingface_hub derived from it at import) at a fresh temp dir.

    Also hides the developer's own token, so no test can use or leak it.
    """
    from huggingface_hub import constants

    home = tmp_path_factory.mktemp("hf_home")
    monkeypatch.setenv("HF_HOME", str(home))
    for var in (
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "HF_TOKEN_PATH",
    ):
        monkeypatch.delenv(var, raising=False)
    # huggingface_hub computed these from the environment when it was first imported.
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_ASSETS_CACHE", str(home / "assets"))
    monkeypatch.setattr(constants, "HF_XET_CACHE", str(home / "xet"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Per-machine measurements (auto precision's probe) go to a temp dir shared by the session."""
    before = os.environ.get("MASKDEPTH_CACHE_DIR")
    os.environ["MASKDEPTH_CACHE_DIR"] = str(tmp_path_factory.mktemp("maskdepth_cache"))
    yield
    if before is None:
        del os.environ["MASKDEPTH_CACHE_DIR"]
    else:
        os.environ["MASKDEPTH_CACHE_DIR"] = before


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """One torch thread per test module: the models are tiny and the cores are shared."""
    with torch_threads(1):
        yield


# ---- the app and the CLI ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app's 'shipped' model: a tiny 6-channel W-Net trained at 32 px."""
    from maskdepth.hub.checkpoint import save_model

    return save_model(tiny_model(), tmp_path_factory.mktemp("shipped") / "checkpoints")


@pytest.fixture
def ctx(tmp_path: Path, shipped: Path) -> Any:
    """An app context on ``shipped`` whose folders are under the test's temp dir.

    (test_app.py and test_compare_tab.py define their own ``ctx``.)
    """
    from support.ui import make_ctx

    return make_ctx(tmp_path / "app", shipped)


@pytest.fixture(params=["app", "cli"])
def entry(request: pytest.FixtureRequest, shipped: Path, capsys: pytest.CaptureFixture) -> Any:
    """The same case through the app's Predict handler, then through ``maskdepth.__main__.main``."""
    from support.entry import AppEntry, CliEntry

    if request.param == "app":
        return AppEntry(request.getfixturevalue("ctx"))
    return CliEntry(shipped, capsys)


@pytest.fixture
def training_slot_free() -> Iterator[None]:
    """No test may leave the process-wide training slot taken (checked after the test)."""
    from support.ui import TRAINING

    yield
    deadline = time.monotonic() + 20
    while TRAINING.busy and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not TRAINING.busy, "a test left the training slot taken"


# ---- the (fake) Hub -----------------------------------------------------------------------------


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline mode off, even if the shell running the tests set HF_HUB_OFFLINE=1."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


@pytest.fixture
def hub_token() -> str:
    """The one token the fake Hub accepts; a test module overrides this fixture to use another."""
    return DEFAULT_TOKEN


@pytest.fixture
def fake_hub(online: None, monkeypatch: pytest.MonkeyPatch, hub_token: str) -> Iterator[FakeHub]:
    """A fake Hub (user alice) on a free port; HF_ENDPOINT points at it (maskdepth.hub.transfer reads it per call)."""
    with FakeHub(token=hub_token, user="alice") as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        yield server

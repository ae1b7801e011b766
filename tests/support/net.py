"""Ports and the launched app: what tests and benchmarks that serve HTTP need."""

from __future__ import annotations

import contextlib
import importlib.util
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_app_module(name: str = "maskdepth_app") -> ModuleType:
    """The repo's app.py (it lives at the root, outside any package), imported by path as ``name``."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "app.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {ROOT / 'app.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def launched(demo: Any, **launch: Any) -> Iterator[str]:
    """``demo`` served on a free port in this process (its URL), closed on the way out."""
    demo.launch(prevent_thread_lock=True, server_port=free_port(), quiet=True, **launch)
    try:
        yield demo.local_url
    finally:
        demo.close()


def build_app(checkpoints: Path, root: Path, *, on_space: bool = False, **folders: Any) -> Any:
    """app.py's ``build_demo`` on ``checkpoints``, with runs, data and comparison folders under ``root``.

    ``folders`` (``comparison_dir=...``, ``examples_dir=...``) replace or add ``build_demo`` arguments.
    """
    kwargs = {"data_dir": root / "data", "comparison_dir": root / "comparison", **folders}
    return load_app_module().build_demo(checkpoints, root / "runs", on_space=on_space, **kwargs)


def training_step(job: Any) -> int:
    """The latest step a ``/train`` stream's progress html showed (0 before the first).

    ``job`` is a ``gradio_client`` job of the app's ``/train`` (or ``/watch_training``) endpoint.
    """
    for html, *_ in reversed(job.outputs()):
        found = re.search(r"step (\d+)", html if isinstance(html, str) else "")
        if found:
            return int(found.group(1))
    return 0

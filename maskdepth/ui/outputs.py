"""Per-request output folders that clean up after themselves."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path

OUTPUT_TTL_S = 3600  # per-request output folders older than this are deleted


class OutputDirs:
    """Per-request output folders under one temp root; folders older than ``ttl_s`` are pruned.

    Gradio copies returned files into its own cache, so ours only need to live a little while.
    They live in the system temp dir, which Gradio allows files to be served from.
    """

    def __init__(self, root: Path | None = None, ttl_s: float = OUTPUT_TTL_S):
        self.root = Path(root) if root else Path(tempfile.gettempdir()) / "maskdepth-app"
        self.ttl_s = ttl_s

    def new(self, prefix: str = "out") -> Path:
        self.prune()
        folder = self.root / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        folder.mkdir(parents=True)
        return folder

    def prune(self) -> None:
        if not self.root.is_dir():
            return
        cutoff = time.time() - self.ttl_s
        for child in self.root.iterdir():
            try:
                if child.is_dir() and child.stat().st_mtime < cutoff:
                    shutil.rmtree(child, ignore_errors=True)
            except OSError:
                continue  # another worker removed it first

"""Helpers shared by the tests (and the benchmarks): one home instead of a copy per test file.

- ``support.models``: tiny W-Nets, tiny training configs, random images, ``torch_threads``.
- ``support.net``: a free port, ``app.py`` loaded by path and built on temp folders (``build_app``), a launched
  demo, the step a ``/train`` stream showed.
- ``support.browser``: a headless Chromium page on the launched app (skipped without Chromium/playwright).
- ``support.fakehub``: a local stand-in for the Hugging Face Hub (``conftest.py`` serves it as ``fake_hub``).
- ``support.files``: files a test builds or inspects (tree snapshots, cut files, hostile pickles).
- ``support.ui``: the app's UI modules, imported here once, and the handlers' test harness.
- ``support.entry``: the same case through the app's handler or through the CLI (the ``entry`` fixture).

Tests import ``support.x``: pytest puts ``tests/`` on the import path (``pythonpath`` in pyproject.toml).
``bench/__init__.py`` does the same for the benchmarks.
"""

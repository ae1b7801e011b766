"""maskdepth benchmarks: ``python bench/run.py [--quick]`` (see BENCHMARKS.md).

The benchmarks share their small helpers with the tests (a free port, ``app.py`` loaded by path, the
fake Hub): they live in ``tests/support/`` and import as ``support.*``, as in the tests. The one
line below puts ``tests/`` on the import path for that, once, for every ``bench.*`` module.
"""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[1] / "tests")
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)  # tests/ holds only test_*.py, conftest.py and support/: nothing to shadow

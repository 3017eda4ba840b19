"""The code passes ruff's checks as configured in pyproject.toml (pyflakes, pycodestyle, import order,
bugbear, pyupgrade for the declared Python), so an unused import or a late-bound loop variable fails
the suite instead of waiting for a reader."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean():
    pytest.importorskip("ruff", reason="the lint test needs ruff: pip install -e '.[test]'")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]

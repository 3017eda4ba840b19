"""The code passes ruff's checks as configured in pyproject.toml (pyflakes, pycodestyle, import order,
bugbear, pyupgrade for the declared Python), so an unused import or a late-bound loop variable fails
the suite instead of waiting for a reader; and it is laid out as `ruff format` lays it out, so a diff
shows what changed, never how it was wrapped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff(*arguments: str) -> subprocess.CompletedProcess:
    pytest.importorskip("ruff", reason="the lint test needs ruff: pip install -e '.[test]'")
    return subprocess.run([sys.executable, "-m", "ruff", *arguments], cwd=ROOT, capture_output=True, text=True)


def test_ruff_check_is_clean():
    result = _ruff("check", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_code_is_laid_out_by_ruff_format():
    result = _ruff("format", "--check", ".")
    assert result.returncode == 0, (
        "run `ruff format .` (these files are laid out otherwise):\n" + result.stdout[-4000:] + result.stderr[-2000:]
    )

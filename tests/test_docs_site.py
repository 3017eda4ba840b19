"""The front door and the documentation site: the README stays short and keeps both command blocks,
the site builds with ``mkdocs build --strict`` (a broken link, anchor or nav entry fails), and the
command-line reference says what the parsers say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_is_short_and_keeps_both_command_blocks():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    for marker in ("<!-- main-command -->", "<!-- test-command -->"):
        block = text.split(marker, 1)[1].lstrip().splitlines()
        assert block[0] == "```bash" and block[1].startswith("python3 -m venv .venv"), marker


def test_readme_links_point_at_files_that_exist():
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text())
    local = [link for link in links if "://" not in link]
    assert local, "the README links into docs/"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing


def test_cli_reference_is_generated_from_the_parsers():
    page = (ROOT / "docs" / "cli.md").read_text()
    python = re.search(r"under Python (\d+\.\d+)", page.splitlines()[0]).group(1)
    if python != f"{sys.version_info.major}.{sys.version_info.minor}":
        pytest.skip(f"docs/cli.md was generated under Python {python}, whose argparse lays out help differently")
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "gen_cli_reference.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="the documentation site needs mkdocs: pip install -e '.[docs]'")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "accuracy" / "index.html").exists()

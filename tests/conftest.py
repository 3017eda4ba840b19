"""Shared fixtures: a small, fast default for every test and the optional shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FOOD101_MINI = SHARED / "data" / "food101-mini"


@pytest.fixture(autouse=True, scope="session")
def _small_cpu_budget():
    # Two cores on CI: one intra-op thread keeps parallel test processes from fighting.
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Caches and default data roots go to a per-session temp dir, never the user's home."""
    root = tmp_path_factory.getbasetemp() / "e2gcsearch-home"
    monkeypatch.setenv("E2GCSEARCH_CACHE_DIR", str(root / "cache"))
    monkeypatch.setenv("E2GCSEARCH_DATA", str(root / "data"))


@pytest.fixture
def food101_mini() -> Path:
    if not (FOOD101_MINI / "food-101" / "meta" / "train.json").exists():
        pytest.skip(f"needs the shared Food-101 subset at {FOOD101_MINI} (not present on this machine)")
    return FOOD101_MINI

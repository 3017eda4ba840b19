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


@pytest.fixture
def tiny_settings(tmp_path):
    """The trial settings of the smallest real search: EPF at B = 4 (estimate, 2 short windows) and top-1
    after one epoch, MobileNet-V1 at width 0.25, 32 px; profiles cached under ``tmp_path``."""
    from e2gcsearch.profiling import ProfileConfig
    from e2gcsearch.search.objectives import parse_objectives
    from e2gcsearch.search.space import SearchSpace
    from e2gcsearch.search.trial import TrialSettings
    from e2gcsearch.train import TrainConfig

    profile = ProfileConfig(
        batch_sizes=(4,),
        resolution=32,
        backend="estimate",
        repeats=2,
        min_window_s=0.02,
        threads=1,
        cache_dir=str(tmp_path / "profiles"),
    )
    return TrialSettings(
        objectives=parse_objectives("epf@4,top1"),
        constraints=(),
        space=SearchSpace(widths=(0.25,)),
        profile=profile,
        train=TrainConfig(epochs=1, batch_size=8, threads=1, progress=False),
    )

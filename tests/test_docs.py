"""The examples in the package's docstrings run and print what they claim.

Every module whose source holds an example (``>>>``) is collected, so a new example is run without
registering it here. A runner that attempts nothing passes vacuously, so the modules whose examples
document a public API must also have attempted some.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "e2gcsearch"
# Modules whose examples are the documentation of a public API: they must hold runnable ones.
MUST_RUN = [
    "e2gcsearch",
    "e2gcsearch.config",
    "e2gcsearch.cost",
    "e2gcsearch.models",
    "e2gcsearch.models.stages",
    "e2gcsearch.search.space",
    "e2gcsearch.search.stagewise",
    "e2gcsearch.search.objectives",
    "e2gcsearch.report.tables",
    "e2gcsearch.profiling",
    "e2gcsearch.data",
    "e2gcsearch.train",
    "e2gcsearch.energy_model",
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = sorted(_module_name(path) for path in PACKAGE.rglob("*.py") if ">>>" in path.read_text())
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def test_the_collection_finds_the_api_modules():
    assert set(MUST_RUN) <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=FLAGS)
    assert result.failed == 0
    if name in MUST_RUN:
        assert result.attempted > 0, f"{name} documents its API with examples, but none of them ran"

"""The examples in the public modules' docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["e2gcsearch", "e2gcsearch.checks", "e2gcsearch.config", "e2gcsearch.cost", "e2gcsearch.report.tables",
           "e2gcsearch.models"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0

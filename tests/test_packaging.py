"""pyproject.toml promises what the code keeps: no Python that ``requires-python`` admits lacks a
standard-library module the package imports."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Standard-library modules younger than some Python 3: the first version that ships each.
NEWER_STDLIB = {"tomllib": (3, 11), "zoneinfo": (3, 9), "graphlib": (3, 9)}


def imported_modules(package: Path) -> set[str]:
    """Top-level names of every absolute import in ``package``."""
    names: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_requires_python_admits_no_python_without_a_module_the_package_imports():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floor = re.fullmatch(r">=\s*(\d+)\.(\d+)", project["requires-python"])
    assert floor, f"expected requires-python like '>=3.11', got {project['requires-python']!r}"
    minimum = (int(floor[1]), int(floor[2]))
    needed = {name: NEWER_STDLIB[name] for name in imported_modules(ROOT / "e2gcsearch") & NEWER_STDLIB.keys()}
    assert all(minimum >= version for version in needed.values()), f"requires-python {minimum} < {needed}"
    for classifier in project.get("classifiers", []):  # a version classifier below the floor would contradict it
        version = re.fullmatch(r"Programming Language :: Python :: (\d+)\.(\d+)", classifier)
        assert not version or (int(version[1]), int(version[2])) >= minimum, classifier

"""The package's shape, as issue-tracked rules: short modules, names that say where you are.

Every module of ``tinyws/`` stays under 300 lines; no two modules share a
file name (``__init__.py``, ``__main__.py`` and each command's ``cli.py``
aside) and no two classes share a name, so a name in a traceback or a
search points at one place; nothing silences the type checker.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tinyws"
SHARED_NAMES = {"__init__.py", "__main__.py", "cli.py"}
MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_package_is_where_we_think() -> None:
    assert (PACKAGE / "__init__.py").exists() and len(MODULES) > 40


def test_no_module_is_over_300_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in MODULES if (n := _lines(p)) > 300}
    assert long == {}


def test_module_names_are_unique() -> None:
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in MODULES:
        if path.name not in SHARED_NAMES:
            by_name[path.name].append(str(path.relative_to(PACKAGE)))
    assert {name: paths for name, paths in by_name.items() if len(paths) > 1} == {}


def test_class_names_are_unique() -> None:
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                by_name[node.name].append(str(path.relative_to(PACKAGE)))
    assert {name: paths for name, paths in by_name.items() if len(paths) > 1} == {}


def test_nothing_silences_the_type_checker() -> None:
    marker = "type: " + "ignore"  # split, so this file does not match itself
    assert [str(p.relative_to(PACKAGE)) for p in MODULES if marker in p.read_text()] == []


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines())

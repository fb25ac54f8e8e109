"""The folder layout is the architecture: bff and workers meet only in panel_core."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_top_level_packages(package: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(("package", "forbidden"), [("bff", "workers"), ("workers", "bff")])
def test_bff_and_workers_never_import_each_other(package: str, forbidden: str) -> None:
    imports = imported_top_level_packages(package)
    assert forbidden not in imports
    assert "panel_core" in imports


def test_the_domain_core_depends_on_neither() -> None:
    imports = imported_top_level_packages("panel_core")
    assert not imports & {"bff", "workers", "devtools", "litestar", "pyzeebe"}

"""The folder layout is the architecture: the participants' panel (bff), the staff dashboard
(staff) and the workers meet only in the domain core (panel_core) and, for the two web apps,
in their shared web package (panel_web)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("bff", "staff", "workers")


def imported_top_level_packages(package: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [(app, other) for app in APPS for other in APPS if other != app],
)
def test_the_apps_never_import_each_other(package: str, forbidden: str) -> None:
    imports = imported_top_level_packages(package)
    assert forbidden not in imports
    assert "panel_core" in imports


def test_the_shared_web_package_belongs_to_no_app() -> None:
    assert not imported_top_level_packages("panel_web") & {*APPS, "devtools"}


def test_the_domain_core_depends_on_neither() -> None:
    imports = imported_top_level_packages("panel_core")
    assert not imports & {*APPS, "panel_web", "devtools", "litestar", "pyzeebe"}

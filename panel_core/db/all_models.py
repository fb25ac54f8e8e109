"""Imports every module that defines tables, so Base.metadata knows them all (Alembic)."""

from panel_core.db import models  # noqa: F401

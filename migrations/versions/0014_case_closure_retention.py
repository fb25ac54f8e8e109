"""the end of a case: access after closure and the retention purge

Revision ID: 0014_case_closure_retention
Revises: 0013_case_type_versions
Create Date: 2026-12-02 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_case_closure_retention"
down_revision: str | None = "0013_case_type_versions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("case_file") as batch_op:
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("access_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("access_shows", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("purge_after", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("purge_kinds", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_case_file_purge_due",
        "case_file",
        ["purge_after"],
        postgresql_where=sa.text("purged_at IS NULL"),
        sqlite_where=sa.text("purged_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_case_file_purge_due", table_name="case_file")
    with op.batch_alter_table("case_file") as batch_op:
        for column in (
            "purged_at",
            "purge_kinds",
            "purge_after",
            "access_shows",
            "access_until",
            "closed_at",
        ):
            batch_op.drop_column(column)

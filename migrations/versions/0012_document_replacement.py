"""document replacement: a rejected document points at nothing, its replacement at it

``document.state`` is a non-native enum (``VARCHAR(16)`` with no CHECK constraint, see
``text_enum`` in ``panel_core/db/models.py``), so the new value ``replaced`` needs no change of
the column: only ``replaces_id`` is added.

Revision ID: 0012_document_replacement
Revises: 0011_staff_dashboard
Create Date: 2026-12-10 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_document_replacement"
down_revision: str | None = "0011_staff_dashboard"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("document") as batch_op:
        batch_op.add_column(sa.Column("replaces_id", sa.Uuid(), nullable=True))
        batch_op.create_index("ix_document_replaces_id", ["replaces_id"])
        batch_op.create_foreign_key(
            "fk_document_replaces_id_document",
            "document",
            ["replaces_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    # Without the column nothing says which documents replaced others: the old ones go back
    # to what the bank last said of them, rejected.
    op.execute("UPDATE document SET state = 'rejected' WHERE state = 'replaced'")
    with op.batch_alter_table("document") as batch_op:
        batch_op.drop_constraint("fk_document_replaces_id_document", type_="foreignkey")
        batch_op.drop_index("ix_document_replaces_id")
        batch_op.drop_column("replaces_id")

"""staff notes on cases and customers

Revision ID: 0018_staff_notes
Revises: 0017_appointments
Create Date: 2026-12-02 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_staff_notes"
down_revision: str | None = "0017_appointments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_note",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("customer_index", sa.String(length=64), nullable=True),
        sa.Column("author_subject", sa.String(length=255), nullable=False),
        sa.Column("author_username", sa.String(length=255), nullable=False),
        sa.Column("author_name", sa.String(length=255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint(
            "(case_id IS NULL) <> (customer_index IS NULL)", name="ck_staff_note_one_subject"
        ),
    )
    op.create_index("ix_staff_note_case", "staff_note", ["case_id", "created_at"])
    op.create_index("ix_staff_note_customer", "staff_note", ["customer_index", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_staff_note_customer", table_name="staff_note")
    op.drop_index("ix_staff_note_case", table_name="staff_note")
    op.drop_table("staff_note")

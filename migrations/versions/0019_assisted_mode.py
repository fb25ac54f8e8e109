"""assisted mode: who completed a participant's task with them on the phone, and in which form

Revision ID: 0019_assisted_mode
Revises: 0018_staff_notes
Create Date: 2026-12-03 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_assisted_mode"
down_revision: str | None = "0018_staff_notes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task_submission") as batch_op:
        batch_op.add_column(sa.Column("assisted_by", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("form_key", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("consent_record") as batch_op:
        batch_op.add_column(sa.Column("assisted_by", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consent_record") as batch_op:
        batch_op.drop_column("assisted_by")
    with op.batch_alter_table("task_submission") as batch_op:
        batch_op.drop_column("form_key")
        batch_op.drop_column("assisted_by")

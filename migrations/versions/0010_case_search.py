"""case search: blind indexes of participants' PESEL and phone, indexes of the case list

Participants registered before this revision get NULL indexes: the PESEL was never stored,
so its index cannot be computed for them (staff find those cases by number or filters);
the phone index could be, from ``phone_e164``, but only with ``hash_key``, which migrations
do not have.

Revision ID: 0010_case_search
Revises: 0009_engine_mirror_for_staff
Create Date: 2026-12-09 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_case_search"
down_revision: str | None = "0009_engine_mirror_for_staff"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CASE_INDEXES = {
    "ix_case_file_status_created_at": ["status", "created_at", "id"],
    "ix_case_file_case_type_created_at": ["case_type", "created_at", "id"],
    "ix_case_file_channel_created_at": ["channel", "created_at", "id"],
    "ix_case_file_created_at": ["created_at", "id"],
}


def upgrade() -> None:
    with op.batch_alter_table("participant") as batch_op:
        batch_op.add_column(sa.Column("pesel_index", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("phone_index", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_participant_pesel_index", ["pesel_index"])
        batch_op.create_index("ix_participant_phone_index", ["phone_index"])
    for name, columns in CASE_INDEXES.items():
        op.create_index(name, "case_file", columns)
    op.create_index(
        "ix_case_file_case_number_prefix",
        "case_file",
        ["case_number"],
        postgresql_ops={"case_number": "varchar_pattern_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_case_file_case_number_prefix", table_name="case_file")
    for name in reversed(CASE_INDEXES):
        op.drop_index(name, table_name="case_file")
    with op.batch_alter_table("participant") as batch_op:
        batch_op.drop_index("ix_participant_phone_index")
        batch_op.drop_index("ix_participant_pesel_index")
        batch_op.drop_column("phone_index")
        batch_op.drop_column("pesel_index")

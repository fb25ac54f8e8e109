"""the retries failing jobs have left, for the dashboard's failed steps

Revision ID: 0015_bureau_incidents
Revises: 0014_case_closure_retention
Create Date: 2026-12-09 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_bureau_incidents"
down_revision: str | None = "0014_case_closure_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "engine_job",
        sa.Column("job_key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("process_instance_key", sa.BigInteger(), nullable=False),
        sa.Column("element_instance_key", sa.BigInteger(), nullable=False),
        sa.Column("job_type", sa.String(length=255), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("job_key"),
    )
    op.create_index("ix_engine_job_process_instance_key", "engine_job", ["process_instance_key"])


def downgrade() -> None:
    op.drop_index("ix_engine_job_process_instance_key", table_name="engine_job")
    op.drop_table("engine_job")

"""engine scopes and variables

Revision ID: 0007_engine_variables
Revises: 0006_form_problems
Create Date: 2026-12-02 00:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_engine_variables"
down_revision: str | None = "0006_form_problems"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "engine_scope",
        sa.Column("element_instance_key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("flow_scope_key", sa.BigInteger(), nullable=False),
        sa.Column("process_instance_key", sa.BigInteger(), nullable=False),
        sa.Column("ended", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("element_instance_key"),
    )
    op.create_index(
        op.f("ix_engine_scope_process_instance_key"),
        "engine_scope",
        ["process_instance_key"],
        unique=False,
    )
    op.create_table(
        "engine_variable",
        sa.Column("scope_key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("process_instance_key", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.JSON(none_as_null=False), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope_key", "name"),
    )
    op.create_index(
        op.f("ix_engine_variable_process_instance_key"),
        "engine_variable",
        ["process_instance_key"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_engine_variable_process_instance_key"), table_name="engine_variable")
    op.drop_table("engine_variable")
    op.drop_index(op.f("ix_engine_scope_process_instance_key"), table_name="engine_scope")
    op.drop_table("engine_scope")

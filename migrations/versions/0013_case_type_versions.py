"""case types as data: descriptor versions, and the version each case was opened with

Revision ID: 0013_case_type_versions
Revises: 0012_document_replacement
Create Date: 2026-12-02 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_case_type_versions"
down_revision: str | None = "0012_document_replacement"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("case_type_descriptor") as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("process_version", sa.Integer(), nullable=True))
    op.create_table(
        "case_type_descriptor_version",
        sa.Column("case_type", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("descriptor", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("process_version", sa.Integer(), nullable=True),
        sa.Column("deployed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("case_type", "version"),
    )
    # What is deployed today is version 1 of each descriptor, and every case opened with it.
    op.execute(
        "INSERT INTO case_type_descriptor_version"
        " (case_type, version, descriptor, sha256, process_version, deployed_at)"
        " SELECT case_type, 1, descriptor, sha256, NULL, deployed_at FROM case_type_descriptor"
    )
    with op.batch_alter_table("case_file") as batch_op:
        batch_op.add_column(sa.Column("descriptor_version", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE case_file SET descriptor_version = 1 WHERE case_type IN"
        " (SELECT case_type FROM case_type_descriptor)"
    )


def downgrade() -> None:
    with op.batch_alter_table("case_file") as batch_op:
        batch_op.drop_column("descriptor_version")
    op.drop_table("case_type_descriptor_version")
    with op.batch_alter_table("case_type_descriptor") as batch_op:
        batch_op.drop_column("process_version")
        batch_op.drop_column("version")

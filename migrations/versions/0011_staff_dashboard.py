"""staff dashboard: actors in the audit log, the participants' activity feed, staff drafts,
saved inbox filters

Revision ID: 0011_staff_dashboard
Revises: 0010_case_search
Create Date: 2026-12-02 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_staff_dashboard"
down_revision: str | None = "0010_case_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The audit events the participants' feed was built from, before it had a table of its own.
FEED_EVENTS = (
    "task.completed",
    "document.uploaded",
    "document.signed",
    "document.reviewed",
    "case.status-changed",
)


def upgrade() -> None:
    with op.batch_alter_table("audit_event") as batch_op:
        batch_op.add_column(sa.Column("actor_kind", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("staff_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("staff_name", sa.String(length=255), nullable=True))
        batch_op.create_index("ix_audit_event_staff_id", ["staff_id"])
    with op.batch_alter_table("task_draft") as batch_op:
        batch_op.alter_column("participant_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.add_column(sa.Column("staff_username", sa.String(length=255), nullable=True))
    op.create_table(
        "activity_event",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("participant_id", sa.Uuid(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_activity_event_case_id", "activity_event", ["case_id"])
    # The feed so far lived in the audit log: it moves, so no participant loses history.
    kinds = ", ".join(f"'{kind}'" for kind in FEED_EVENTS)
    op.execute(
        "INSERT INTO activity_event (case_id, occurred_at, kind, participant_id, details) "
        "SELECT a.case_id, a.occurred_at, a.event, a.participant_id, a.details "
        "FROM audit_event a JOIN case_file c ON c.id = a.case_id "
        f"WHERE a.event IN ({kinds}) ORDER BY a.id"
    )
    op.create_table(
        "staff_saved_filter",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("team", sa.String(length=255), nullable=True),
        sa.Column("query", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner", "name"),
    )
    op.create_index("ix_staff_saved_filter_owner", "staff_saved_filter", ["owner"])
    op.create_index("ix_staff_saved_filter_team", "staff_saved_filter", ["team"])
    with op.batch_alter_table("case_file") as batch_op:
        batch_op.add_column(sa.Column("status_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case_file") as batch_op:
        batch_op.drop_column("status_reason")
    op.drop_table("staff_saved_filter")
    op.drop_table("activity_event")
    with op.batch_alter_table("task_draft") as batch_op:
        batch_op.drop_column("staff_username")
        batch_op.alter_column("participant_id", existing_type=sa.Uuid(), nullable=False)
    with op.batch_alter_table("audit_event") as batch_op:
        batch_op.drop_index("ix_audit_event_staff_id")
        batch_op.drop_column("staff_name")
        batch_op.drop_column("staff_id")
        batch_op.drop_column("actor_kind")

"""appointments with participants, their requests to move them, staff groups for calendars

Revision ID: 0017_appointments
Revises: 0016_email_outbox
Create Date: 2026-12-02 16:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_appointments"
down_revision: str | None = "0016_email_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every kind of personal data a purge knew before appointments: a closed case waiting for
# its purge with all of them purges everything, so its appointments go too.
EARLIER_KINDS = frozenset({"documents", "signatures", "answers", "drafts", "identity", "phones"})
REMINDER_DUE = sa.text("reminded_at IS NULL AND state = 'scheduled'")
REQUEST_OPEN = sa.text("resolved_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "appointment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("participant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("branch", "phone", name="appointmentkind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "scheduled", "cancelled", name="appointmentstate", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("place", sa.Text(), nullable=True),
        sa.Column("phone_e164", sa.String(length=16), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("staff_username", sa.String(length=255), nullable=False),
        sa.Column("staff_name", sa.String(length=255), nullable=False),
        sa.Column("booked_by", sa.String(length=255), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_appointment_case_id", "appointment", ["case_id"])
    op.create_index("ix_appointment_participant_id", "appointment", ["participant_id"])
    op.create_index(
        "ix_appointment_holder_starts_at", "appointment", ["staff_username", "starts_at"]
    )
    op.create_index(
        "ix_appointment_reminder_due",
        "appointment",
        ["remind_at"],
        postgresql_where=REMINDER_DUE,
        sqlite_where=REMINDER_DUE,
    )
    op.create_table(
        "appointment_change_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("participant_id", sa.Uuid(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("preferred", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("resolved_by", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["appointment_id"], ["appointment.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_appointment_change_request_appointment_id",
        "appointment_change_request",
        ["appointment_id"],
    )
    op.create_index(
        "uq_appointment_change_request_open",
        "appointment_change_request",
        ["appointment_id"],
        unique=True,
        postgresql_where=REQUEST_OPEN,
        sqlite_where=REQUEST_OPEN,
    )
    op.create_table(
        "staff_group_member",
        sa.Column("group", sa.String(length=255), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group", "username"),
    )
    op.create_index("ix_staff_group_member_username", "staff_group_member", ["username"])
    _purge_appointments_with_everything_else()


def _purge_appointments_with_everything_else() -> None:
    cases = sa.table(
        "case_file",
        sa.column("id", sa.Uuid()),
        sa.column("purge_kinds", sa.JSON()),
        sa.column("purged_at", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    waiting = bind.execute(
        sa.select(cases.c.id, cases.c.purge_kinds).where(
            cases.c.purge_kinds.is_not(None), cases.c.purged_at.is_(None)
        )
    ).all()
    for case_id, kinds in waiting:
        if isinstance(kinds, list) and EARLIER_KINDS <= set(kinds) and "appointments" not in kinds:
            bind.execute(
                cases.update()
                .where(cases.c.id == case_id)
                .values(purge_kinds=[*kinds, "appointments"])
            )


def downgrade() -> None:
    op.drop_index("ix_staff_group_member_username", table_name="staff_group_member")
    op.drop_table("staff_group_member")
    op.drop_index("uq_appointment_change_request_open", table_name="appointment_change_request")
    op.drop_index(
        "ix_appointment_change_request_appointment_id", table_name="appointment_change_request"
    )
    op.drop_table("appointment_change_request")
    op.drop_index("ix_appointment_reminder_due", table_name="appointment")
    op.drop_index("ix_appointment_holder_starts_at", table_name="appointment")
    op.drop_index("ix_appointment_participant_id", table_name="appointment")
    op.drop_index("ix_appointment_case_id", table_name="appointment")
    op.drop_table("appointment")

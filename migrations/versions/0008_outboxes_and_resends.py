"""outbox leases, engine commands, resends after a refusal, signed bytes

Revision ID: 0008_outboxes_and_resends
Revises: 0007_engine_variables
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008_outboxes_and_resends"
down_revision: str | None = "0007_engine_variables"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Unnamed constraints get these names when SQLite's tables are rebuilt (batch mode), so
# they can be dropped by name on both dialects.
NAMING = {"uq": "%(table_name)s_%(column_0_name)s_key"}
ACTIVE = sa.text("state IN ('pending', 'delivered', 'unconfirmed')")


def _lease_columns(batch_op: Any) -> None:
    batch_op.add_column(sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True))
    batch_op.add_column(sa.Column("lease_owner", sa.String(length=32), nullable=True))
    batch_op.add_column(sa.Column("request_id", sa.String(length=64), nullable=True))


def upgrade() -> None:
    with op.batch_alter_table("case_file") as batch_op:
        batch_op.add_column(sa.Column("process_id", sa.String(length=255), nullable=True))
    with op.batch_alter_table("task_submission", naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint("task_submission_panel_task_id_key", type_="unique")
        batch_op.create_index("ix_task_submission_panel_task_id", ["panel_task_id"])
        batch_op.create_index(
            "uq_task_submission_active",
            ["panel_task_id"],
            unique=True,
            postgresql_where=ACTIVE,
            sqlite_where=ACTIVE,
        )
        _lease_columns(batch_op)
    with op.batch_alter_table("sms_outbox") as batch_op:
        _lease_columns(batch_op)

    with op.batch_alter_table("signature_record", naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint("signature_record_panel_task_id_key", type_="unique")
        batch_op.create_index("ix_signature_record_panel_task_id", ["panel_task_id"])
        batch_op.add_column(sa.Column("submission_id", sa.Uuid(), nullable=True))
        batch_op.create_index("ix_signature_record_submission_id", ["submission_id"])
        batch_op.create_foreign_key(
            "signature_record_submission_id_fkey",
            "task_submission",
            ["submission_id"],
            ["id"],
            ondelete="SET NULL",
        )
        # Signatures made before the bytes were kept carry an empty content: their text
        # can no longer be rebuilt faithfully, and pretending otherwise would be worse.
        batch_op.add_column(
            sa.Column("content", sa.LargeBinary(), nullable=False, server_default=sa.text("''"))
        )
        batch_op.add_column(
            sa.Column(
                "media_type",
                sa.String(length=128),
                nullable=False,
                server_default="text/plain; charset=utf-8",
            )
        )
        batch_op.add_column(
            sa.Column("filename", sa.String(length=255), nullable=False, server_default="")
        )
    with op.batch_alter_table("signature_record") as batch_op:
        batch_op.alter_column("content", server_default=None)
        batch_op.alter_column("media_type", server_default=None)
        batch_op.alter_column("filename", server_default=None)
    if op.get_bind().dialect.name == "postgresql":
        # What was signed never changes: the database itself refuses an update.
        op.execute(
            """
            CREATE FUNCTION signature_record_immutable() RETURNS trigger AS $$
            BEGIN
              -- Only the link to the submission may go (when the submission is deleted).
              IF (NEW.id, NEW.case_id, NEW.participant_id, NEW.panel_task_id,
                  NEW.document_name, NEW.document_sha256, NEW.content, NEW.media_type,
                  NEW.filename, NEW.verification::text, NEW.signed_at)
                 IS DISTINCT FROM
                 (OLD.id, OLD.case_id, OLD.participant_id, OLD.panel_task_id,
                  OLD.document_name, OLD.document_sha256, OLD.content, OLD.media_type,
                  OLD.filename, OLD.verification::text, OLD.signed_at)
                 OR (NEW.submission_id IS NOT NULL
                     AND NEW.submission_id IS DISTINCT FROM OLD.submission_id) THEN
                RAISE EXCEPTION 'signature records are immutable';
              END IF;
              RETURN NEW;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER signature_record_no_update BEFORE UPDATE ON signature_record "
            "FOR EACH ROW EXECUTE FUNCTION signature_record_immutable()"
        )

    op.create_table(
        "engine_command",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "start-process",
                "cancel-instance",
                name="enginecommandkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("process_id", sa.String(length=255), nullable=True),
        sa.Column("process_instance_key", sa.BigInteger(), nullable=True),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending", "done", "failed", name="commandstate", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=32), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index("ix_engine_command_case_id", "engine_command", ["case_id"])
    op.create_index("ix_engine_command_state", "engine_command", ["state"])

    op.create_table(
        "channel_request",
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("idempotency_key"),
    )
    op.create_table(
        "engine_task_end",
        sa.Column("user_task_key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_task_key"),
    )


def downgrade() -> None:
    op.drop_table("engine_task_end")
    op.drop_table("channel_request")
    op.drop_index("ix_engine_command_state", table_name="engine_command")
    op.drop_index("ix_engine_command_case_id", table_name="engine_command")
    op.drop_table("engine_command")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER signature_record_no_update ON signature_record")
        op.execute("DROP FUNCTION signature_record_immutable()")
    with op.batch_alter_table("signature_record") as batch_op:
        batch_op.drop_column("filename")
        batch_op.drop_column("media_type")
        batch_op.drop_column("content")
        batch_op.drop_constraint("signature_record_submission_id_fkey", type_="foreignkey")
        batch_op.drop_index("ix_signature_record_submission_id")
        batch_op.drop_column("submission_id")
        batch_op.drop_index("ix_signature_record_panel_task_id")
        batch_op.create_unique_constraint("signature_record_panel_task_id_key", ["panel_task_id"])
    with op.batch_alter_table("sms_outbox") as batch_op:
        batch_op.drop_column("request_id")
        batch_op.drop_column("lease_owner")
        batch_op.drop_column("leased_until")
    with op.batch_alter_table("task_submission") as batch_op:
        batch_op.drop_column("request_id")
        batch_op.drop_column("lease_owner")
        batch_op.drop_column("leased_until")
        batch_op.drop_index("uq_task_submission_active")
        batch_op.drop_index("ix_task_submission_panel_task_id")
        batch_op.create_unique_constraint("task_submission_panel_task_id_key", ["panel_task_id"])
    with op.batch_alter_table("case_file") as batch_op:
        batch_op.drop_column("process_id")

"""conversations between participants and the bank, canned answers

Revision ID: 0020_conversations
Revises: 0019_assisted_mode
Create Date: 2026-12-02 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_conversations"
down_revision: str | None = "0019_assisted_mode"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "conversation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("participant_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("team", sa.String(length=255), nullable=False),
        sa.Column("assignee_subject", sa.String(length=255), nullable=True),
        sa.Column("assignee_username", sa.String(length=255), nullable=True),
        sa.Column("assignee_name", sa.String(length=255), nullable=True),
        sa.Column(
            "state",
            sa.Enum("open", "closed", name="conversationstate", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "resolution",
            sa.Enum("faq", "bank", name="conversationresolution", native_enum=False, length=16),
            nullable=True,
        ),
        sa.Column("faq_entry", sa.Integer(), nullable=True),
        _when("created_at", nullable=False),
        _when("last_message_at", nullable=False),
        _when("last_participant_message_at"),
        _when("last_staff_message_at"),
        _when("participant_read_at"),
        _when("staff_read_at"),
        _when("away_sms_at"),
        _when("closed_at"),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["task_id"], ["panel_task.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_conversation_case_id", "conversation", ["case_id"])
    op.create_index("ix_conversation_queue", "conversation", ["state", "team", "last_message_at"])
    op.create_index(
        "ix_conversation_participant", "conversation", ["participant_id", "last_message_at"]
    )
    op.create_index("ix_conversation_assignee", "conversation", ["assignee_username", "state"])
    op.create_table(
        "conversation_message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column(
            "author",
            sa.Enum(
                "participant", "staff", "panel", name="messageauthor", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("staff_subject", sa.String(length=255), nullable=True),
        sa.Column("staff_username", sa.String(length=255), nullable=True),
        sa.Column("staff_name", sa.String(length=255), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        _when("created_at", nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_conversation_message_thread", "conversation_message", ["conversation_id", "created_at"]
    )
    op.create_index("ix_conversation_message_case_id", "conversation_message", ["case_id"])
    op.create_table(
        "canned_answer",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_type", sa.String(length=64), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        _when("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_canned_answer_type", "canned_answer", ["case_type", "locale"])


def downgrade() -> None:
    op.drop_index("ix_canned_answer_type", table_name="canned_answer")
    op.drop_table("canned_answer")
    op.drop_index("ix_conversation_message_case_id", table_name="conversation_message")
    op.drop_index("ix_conversation_message_thread", table_name="conversation_message")
    op.drop_table("conversation_message")
    op.drop_index("ix_conversation_assignee", table_name="conversation")
    op.drop_index("ix_conversation_participant", table_name="conversation")
    op.drop_index("ix_conversation_queue", table_name="conversation")
    op.drop_index("ix_conversation_case_id", table_name="conversation")
    op.drop_table("conversation")

"""engine mirror for staff: every user task change, candidate groups to search, process
instances and incidents

Tasks recorded before this revision get their candidate groups' rows from their JSON list
if the engine has not ended them; their candidate users stay empty until the engine changes
them (the records that had them were applied before the column existed).

Revision ID: 0009_engine_mirror_for_staff
Revises: 0008_outboxes_and_resends
Create Date: 2026-12-09 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_engine_mirror_for_staff"
down_revision: str | None = "0008_outboxes_and_resends"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _state(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=16)


def upgrade() -> None:
    with op.batch_alter_table("panel_task") as batch_op:
        batch_op.add_column(
            sa.Column("candidate_users", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(
            sa.Column("engine_position", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("engine_attribute_positions", sa.JSON(), nullable=False, server_default="{}")
        )
        batch_op.create_index("ix_panel_task_state_assignee", ["state", "assignee"])
    with op.batch_alter_table("panel_task") as batch_op:
        batch_op.alter_column("candidate_users", server_default=None)
        batch_op.alter_column("engine_position", server_default=None)
        batch_op.alter_column("engine_attribute_positions", server_default=None)

    op.create_table(
        "panel_task_candidate_group",
        sa.Column("group", sa.String(length=255), nullable=False),
        sa.Column("panel_task_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["panel_task_id"], ["panel_task.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("group", "panel_task_id"),
    )
    op.create_index(
        "ix_panel_task_candidate_group_panel_task_id",
        "panel_task_candidate_group",
        ["panel_task_id"],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            INSERT INTO panel_task_candidate_group ("group", panel_task_id)
            SELECT DISTINCT g.value, t.id
            FROM panel_task AS t, json_array_elements_text(t.candidate_groups) AS g(value)
            WHERE t.state IN ('open', 'submitted') AND g.value <> ''
            """
        )
    else:
        op.execute(
            """
            INSERT INTO panel_task_candidate_group ("group", panel_task_id)
            SELECT DISTINCT g.value, t.id
            FROM panel_task AS t, json_each(t.candidate_groups) AS g
            WHERE t.state IN ('open', 'submitted') AND g.value <> ''
            """
        )

    op.create_table(
        "engine_process_instance",
        sa.Column("process_instance_key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("bpmn_process_id", sa.String(length=255), nullable=False),
        sa.Column("process_definition_key", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("parent_process_instance_key", sa.BigInteger(), nullable=True),
        sa.Column("parent_element_instance_key", sa.BigInteger(), nullable=True),
        sa.Column("root_process_instance_key", sa.BigInteger(), nullable=False),
        sa.Column(
            "state",
            _state("processinstancestate", "active", "completed", "terminated"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("process_instance_key"),
    )
    for column in ("parent_process_instance_key", "root_process_instance_key", "state"):
        op.create_index(f"ix_engine_process_instance_{column}", "engine_process_instance", [column])

    op.create_table(
        "engine_incident",
        sa.Column("incident_key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("process_instance_key", sa.BigInteger(), nullable=False),
        sa.Column("root_process_instance_key", sa.BigInteger(), nullable=False),
        sa.Column("bpmn_process_id", sa.String(length=255), nullable=False),
        sa.Column("process_definition_key", sa.BigInteger(), nullable=False),
        sa.Column("element_id", sa.String(length=255), nullable=False),
        sa.Column("element_instance_key", sa.BigInteger(), nullable=False),
        sa.Column("job_key", sa.BigInteger(), nullable=True),
        sa.Column("error_type", sa.String(length=64), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("state", _state("incidentstate", "active", "resolved"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("incident_key"),
    )
    op.create_index(
        "ix_engine_incident_process_instance_key", "engine_incident", ["process_instance_key"]
    )
    op.create_index(
        "ix_engine_incident_state_created_at", "engine_incident", ["state", "created_at"]
    )
    op.create_index(
        "ix_engine_incident_root_state", "engine_incident", ["root_process_instance_key", "state"]
    )


def downgrade() -> None:
    op.drop_table("engine_incident")
    op.drop_table("engine_process_instance")
    op.drop_table("panel_task_candidate_group")
    with op.batch_alter_table("panel_task") as batch_op:
        batch_op.drop_index("ix_panel_task_state_assignee")
        batch_op.drop_column("engine_attribute_positions")
        batch_op.drop_column("engine_position")
        batch_op.drop_column("candidate_users")

"""ticket workflow: sub-steps, optimistic locking, dispatch; desk tasks; live chat

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

The people behind the bot (issue 4): tickets get our sub-steps inside the TMF621 status,
a version for optimistic locking, the fault class and measurement centre of a dispatch
(S2) and a chase count (J5); each history row names the workflow action and the
sub-steps either side. Desk tasks carry work from one post to another (senior
transfers with their S3 grade, callbacks, manager escalations, notices to a branch).
A handoff records when and why it ended and how often the caller was offered a return
to the bot (J1); handoff_message holds the live chat with the operator; a desk user
may have a SIP extension that calls are bridged to.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sub_step", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("fault_class", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("centre_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("chase_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_index(batch_op.f("ix_ticket_sub_step"), ["sub_step"], unique=False)
        batch_op.create_index(batch_op.f("ix_ticket_centre_id"), ["centre_id"], unique=False)

    with op.batch_alter_table("ticket_status_change", schema=None) as batch_op:
        batch_op.add_column(sa.Column("action", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("from_sub_step", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("to_sub_step", sa.String(length=30), nullable=True))

    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("end_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("return_offers", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("transferred_from", sa.String(length=64), nullable=True))

    with op.batch_alter_table("desk_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extension", sa.String(length=20), nullable=True))

    op.create_table(
        "handoff_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handoff_id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=20), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["handoff_id"], ["handoff.id"], name=op.f("fk_handoff_message_handoff_id_handoff"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_message")),
    )
    with op.batch_alter_table("handoff_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_handoff_message_handoff_id"), ["handoff_id"], unique=False)

    op.create_table(
        "desk_task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("branch", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("ticket_id", sa.String(length=40), nullable=True),
        sa.Column("handoff_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_by", sa.String(length=64), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("grade", sa.String(length=20), nullable=True),
        sa.Column("grade_note", sa.Text(), nullable=True),
        sa.Column("graded_by", sa.String(length=64), nullable=True),
        sa.Column("graded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_task")),
    )
    with op.batch_alter_table("desk_task", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_desk_task_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_desk_task_role"), ["role"], unique=False)
        batch_op.create_index(batch_op.f("ix_desk_task_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_desk_task_ticket_id"), ["ticket_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_desk_task_handoff_id"), ["handoff_id"], unique=False)


def downgrade() -> None:
    op.drop_table("desk_task")
    op.drop_table("handoff_message")
    with op.batch_alter_table("desk_user", schema=None) as batch_op:
        batch_op.drop_column("extension")
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.drop_column("transferred_from")
        batch_op.drop_column("return_offers")
        batch_op.drop_column("end_reason")
        batch_op.drop_column("ended_at")
    with op.batch_alter_table("ticket_status_change", schema=None) as batch_op:
        batch_op.drop_column("to_sub_step")
        batch_op.drop_column("from_sub_step")
        batch_op.drop_column("action")
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_centre_id"))
        batch_op.drop_index(batch_op.f("ix_ticket_sub_step"))
        batch_op.drop_column("chase_count")
        batch_op.drop_column("dispatched_at")
        batch_op.drop_column("centre_id")
        batch_op.drop_column("fault_class")
        batch_op.drop_column("version")
        batch_op.drop_column("sub_step")

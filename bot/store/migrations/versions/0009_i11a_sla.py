"""deadline watch: watches, violations, TMF621 events and hubs; centres' calendars (U1-U2)

Revision ID: 0009_i11a_sla
Revises: 0008_i12d
Create Date: 2026-12-07

``deadline_watch``: one row per dispatch of a ticket (unique per ticket and dispatch
number), with when its warning and alarm went out. ``deadline_violation``: one per
dispatch that missed its deadline. ``ticket_event``: TMF621 events, once per cause;
``event_hub``: listeners registered through ``POST …/hub``. ``measurement_centre``
gets the world file's ``working_hours`` for the centre (U1-U2).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_i11a_sla"
down_revision: str | None = "0008_i12d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("measurement_centre", schema=None) as batch_op:
        batch_op.add_column(sa.Column("working_hours", sa.JSON(), nullable=True))
    op.create_table(
        "deadline_watch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.String(length=40), nullable=False),
        sa.Column("dispatch_no", sa.Integer(), nullable=False),
        sa.Column("centre_id", sa.String(length=64), nullable=False),
        sa.Column("branch", sa.String(length=100), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("allowance_hours", sa.Float(), nullable=False),
        sa.Column("working_hours_only", sa.Boolean(), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("alarmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=40), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deadline_watch")),
        sa.UniqueConstraint("ticket_id", "dispatch_no", name="uq_deadline_watch_ticket_dispatch"),
        sa.UniqueConstraint("ticket_id", "dispatched_at", name="uq_deadline_watch_ticket_dispatched_at"),
    )
    with op.batch_alter_table("deadline_watch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deadline_watch_ticket_id"), ["ticket_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deadline_watch_centre_id"), ["centre_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deadline_watch_ended_at"), ["ended_at"], unique=False)
    op.create_table(
        "deadline_violation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("watch_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.String(length=40), nullable=False),
        sa.Column("dispatch_no", sa.Integer(), nullable=False),
        sa.Column("centre_id", sa.String(length=64), nullable=False),
        sa.Column("centre_name", sa.String(length=200), nullable=False),
        sa.Column("branch", sa.String(length=100), nullable=True),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("late_by_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deadline_violation")),
        sa.UniqueConstraint("ticket_id", "dispatch_no", name="uq_deadline_violation_ticket_dispatch"),
    )
    with op.batch_alter_table("deadline_violation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deadline_violation_watch_id"), ["watch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deadline_violation_ticket_id"), ["ticket_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deadline_violation_centre_id"), ["centre_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deadline_violation_detected_at"), ["detected_at"], unique=False)
    op.create_table(
        "ticket_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.String(length=40), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("dedupe_key", sa.String(length=120), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(length=20), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_event")),
        sa.UniqueConstraint("event_id", name=op.f("uq_ticket_event_event_id")),
        sa.UniqueConstraint("ticket_id", "dedupe_key", name="uq_ticket_event_ticket_dedupe"),
    )
    with op.batch_alter_table("ticket_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_event_ticket_id"), ["ticket_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ticket_event_event_time"), ["event_time"], unique=False)
    op.create_table(
        "event_hub",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("callback", sa.String(length=500), nullable=False),
        sa.Column("query", sa.String(length=500), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_hub")),
    )


def downgrade() -> None:
    op.drop_table("event_hub")
    op.drop_table("ticket_event")
    op.drop_table("deadline_violation")
    op.drop_table("deadline_watch")
    with op.batch_alter_table("measurement_centre", schema=None) as batch_op:
        batch_op.drop_column("working_hours")

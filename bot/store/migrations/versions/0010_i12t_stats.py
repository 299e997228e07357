"""statistics (T1–T5): reports with frozen figures and their history, the daily rollup,
and indexes by time on the rows the figures are computed from

Revision ID: 0010_i12t_stats
Revises: 0009_i11a_sla
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_i12t_stats"
down_revision: str | None = "0009_i11a_sla"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME_INDEXES = (
    ("ix_stats_outcome_at", "conversation_outcome", "at"),
    ("ix_stats_handoff_created", "handoff", "created"),
    ("ix_stats_report_at", "report", "at"),
    ("ix_stats_ticket_creation_date", "ticket", "creation_date"),
    ("ix_stats_status_change_at", "ticket_status_change", "at"),
)


def upgrade() -> None:
    op.create_table(
        "stats_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("period_start", sa.String(length=10), nullable=False),
        sa.Column("period_end", sa.String(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous_id", sa.Integer(), nullable=True),
        sa.Column("superseded_by_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("figures_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generated_by", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("correction_reason", sa.Text(), nullable=True),
        sa.Column("submitted_by", sa.String(length=64), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_report")),
        sa.UniqueConstraint("kind", "period_start", "version", name="uq_stats_report_period_version"),
    )
    with op.batch_alter_table("stats_report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stats_report_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_stats_report_state"), ["state"], unique=False)
    op.create_table(
        "stats_report_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["report_id"], ["stats_report.id"],
                                name=op.f("fk_stats_report_event_report_id_stats_report"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_report_event")),
    )
    with op.batch_alter_table("stats_report_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stats_report_event_report_id"), ["report_id"], unique=False)
    op.create_table(
        "stats_daily",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("cube", sa.String(length=20), nullable=False),
        sa.Column("k1", sa.String(length=120), nullable=False),
        sa.Column("k2", sa.String(length=120), nullable=False),
        sa.Column("k3", sa.String(length=120), nullable=False),
        sa.Column("k4", sa.String(length=120), nullable=False),
        sa.Column("k5", sa.String(length=120), nullable=False),
        sa.Column("k6", sa.String(length=120), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("v", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_daily")),
    )
    op.create_index("ix_stats_daily_cube_day", "stats_daily", ["cube", "day"], unique=False)
    op.create_table(
        "stats_rollup_day",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_stats_rollup_day")),
    )
    for name, table, column in _TIME_INDEXES:
        op.create_index(name, table, [column], unique=False)


def downgrade() -> None:
    for name, table, _column in _TIME_INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_table("stats_rollup_day")
    op.drop_index("ix_stats_daily_cube_day", table_name="stats_daily")
    op.drop_table("stats_daily")
    op.drop_table("stats_report_event")
    op.drop_table("stats_report")

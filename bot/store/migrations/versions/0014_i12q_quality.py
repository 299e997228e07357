"""quality inspection: samples, scores with history, violations, hand-off flags (issue 12, Q1-Q8)

Revision ID: 0014_i12q_quality
Revises: 0013_i12t4_stats_survey_indexes
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_i12q_quality"
down_revision: str | None = "0013_i12t4_stats_survey_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "qa_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=10), nullable=False),
        sa.Column("daily_key", sa.String(length=60), nullable=True),
        sa.Column("post", sa.String(length=20), nullable=True),
        sa.Column("person", sa.String(length=64), nullable=True),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("seed", sa.String(length=120), nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_batch")),
        sa.UniqueConstraint("daily_key", name=op.f("uq_qa_batch_daily_key")),
    )
    op.create_table(
        "qa_handoff_flag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=180), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("ticket_id", sa.String(length=40), nullable=True),
        sa.Column("conversation_id", sa.String(length=128), nullable=True),
        sa.Column("passes", sa.Integer(), nullable=False),
        sa.Column("longest_wait_s", sa.Float(), nullable=False),
        sa.Column("waited_at", sa.String(length=20), nullable=True),
        sa.Column("path", sa.JSON(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reviewed_by", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_handoff_flag")),
        sa.UniqueConstraint("subject", "reason", name="uq_qa_handoff_flag_subject_reason"),
    )
    with op.batch_alter_table("qa_handoff_flag", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_qa_handoff_flag_detected_at"), ["detected_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_qa_handoff_flag_ticket_id"), ["ticket_id"], unique=False
        )

    op.create_table(
        "qa_violation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=True),
        sa.Column("post", sa.String(length=20), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=True),
        sa.Column("score_id", sa.Integer(), nullable=True),
        sa.Column("rule", sa.String(length=60), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("work_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.String(length=64), nullable=True),
        sa.Column("withdrawn_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_violation")),
        sa.UniqueConstraint("score_id", "rule", name="uq_qa_violation_score_rule"),
    )
    with op.batch_alter_table("qa_violation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qa_violation_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_qa_violation_person"), ["person"], unique=False)
        batch_op.create_index(batch_op.f("ix_qa_violation_post"), ["post"], unique=False)
        batch_op.create_index(batch_op.f("ix_qa_violation_sample_id"), ["sample_id"], unique=False)

    op.create_table(
        "qa_sample",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("post", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("ref", sa.String(length=160), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=True),
        sa.Column("work_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("ticket_id", sa.String(length=40), nullable=True),
        sa.Column("handoff_id", sa.Integer(), nullable=True),
        sa.Column("conversation_id", sa.String(length=128), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["qa_batch.id"],
            name=op.f("fk_qa_sample_batch_id_qa_batch"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_sample")),
        sa.UniqueConstraint("kind", "ref", name="uq_qa_sample_kind_ref"),
    )
    with op.batch_alter_table("qa_sample", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qa_sample_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_qa_sample_day"), ["day"], unique=False)
        batch_op.create_index(batch_op.f("ix_qa_sample_person"), ["person"], unique=False)
        batch_op.create_index(batch_op.f("ix_qa_sample_post"), ["post"], unique=False)

    op.create_table(
        "qa_score",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("post", sa.String(length=20), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=True),
        sa.Column("card", sa.String(length=40), nullable=False),
        sa.Column("card_version", sa.Integer(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("max_points", sa.Float(), nullable=False),
        sa.Column("percent", sa.Float(), nullable=False),
        sa.Column("instant_fail", sa.Boolean(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("scored_by", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("work_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["sample_id"],
            ["qa_sample.id"],
            name=op.f("fk_qa_score_sample_id_qa_sample"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_score")),
        sa.UniqueConstraint("sample_id", name=op.f("uq_qa_score_sample_id")),
    )
    with op.batch_alter_table("qa_score", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qa_score_person"), ["person"], unique=False)
        batch_op.create_index(batch_op.f("ix_qa_score_post"), ["post"], unique=False)
        batch_op.create_index(batch_op.f("ix_qa_score_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_qa_score_work_at"), ["work_at"], unique=False)

    op.create_table(
        "qa_score_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("score_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["score_id"],
            ["qa_score.id"],
            name=op.f("fk_qa_score_change_score_id_qa_score"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_score_change")),
    )
    with op.batch_alter_table("qa_score_change", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qa_score_change_score_id"), ["score_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("qa_score_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qa_score_change_score_id"))

    op.drop_table("qa_score_change")
    with op.batch_alter_table("qa_score", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qa_score_work_at"))
        batch_op.drop_index(batch_op.f("ix_qa_score_state"))
        batch_op.drop_index(batch_op.f("ix_qa_score_post"))
        batch_op.drop_index(batch_op.f("ix_qa_score_person"))

    op.drop_table("qa_score")
    with op.batch_alter_table("qa_sample", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qa_sample_post"))
        batch_op.drop_index(batch_op.f("ix_qa_sample_person"))
        batch_op.drop_index(batch_op.f("ix_qa_sample_day"))
        batch_op.drop_index(batch_op.f("ix_qa_sample_batch_id"))

    op.drop_table("qa_sample")
    with op.batch_alter_table("qa_violation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qa_violation_sample_id"))
        batch_op.drop_index(batch_op.f("ix_qa_violation_post"))
        batch_op.drop_index(batch_op.f("ix_qa_violation_person"))
        batch_op.drop_index(batch_op.f("ix_qa_violation_at"))

    op.drop_table("qa_violation")
    with op.batch_alter_table("qa_handoff_flag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qa_handoff_flag_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_qa_handoff_flag_detected_at"))

    op.drop_table("qa_handoff_flag")
    op.drop_table("qa_batch")

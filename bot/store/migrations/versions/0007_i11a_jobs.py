"""jobs: one-off jobs waiting to run and every run of any job (bot/jobs/)

Revision ID: 0007_i11a_jobs
Revises: 0006
Create Date: 2026-12-07

``job``: a job due once, unique per (kind, key). ``job_run``: every run, unique per
(kind, key, attempt), with its state, error and next try. APScheduler's own table
(``apscheduler_jobs``, the periodic schedules) is made by its job store.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_i11a_jobs"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(length=120), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
        sa.UniqueConstraint("kind", "key", name="uq_job_kind_key"),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_run_at"), ["run_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_state"), ["state"], unique=False)
    op.create_table(
        "job_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("runner", sa.String(length=120), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_try", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_run")),
        sa.UniqueConstraint("kind", "key", "attempt", name="uq_job_run_kind_key_attempt"),
    )
    with op.batch_alter_table("job_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_run_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_run_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_run_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_run_started"), ["started"], unique=False)


def downgrade() -> None:
    op.drop_table("job_run")
    op.drop_table("job")
    op.execute("DROP TABLE IF EXISTS apscheduler_jobs")

"""outbound calls the bot places: purpose, number, outcome and FreeSWITCH's hangup cause

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

The bot calls out (a test call now, the satisfaction survey U3 next): one row per call
with why it was placed, the callee's number (one a caller gave or used), how far it
got, the result (answered, no_answer, busy, rejected, failed), the raw hangup cause and
the key the callee pressed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbound_call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("ref_id", sa.String(length=64), nullable=True),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("result", sa.String(length=20), nullable=True),
        sa.Column("hangup_cause", sa.String(length=64), nullable=True),
        sa.Column("channel_uuid", sa.String(length=64), nullable=True),
        sa.Column("key_pressed", sa.String(length=8), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_call")),
    )
    with op.batch_alter_table("outbound_call", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbound_call_purpose"), ["purpose"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbound_call_number"), ["number"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbound_call_state"), ["state"], unique=False)


def downgrade() -> None:
    op.drop_table("outbound_call")

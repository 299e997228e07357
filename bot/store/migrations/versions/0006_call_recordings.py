"""call recordings: every bridged operator call, as FreeSWITCH recorded it (Q2)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

One row per bridge of a caller to an operator's phone: the handoff, the ticket it is
attached to (as a TMF621 attachment of type callRecording), the operator, the file and
what its WAV header says, and when the retention sweep deleted the file (the row stays).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_recording",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handoff_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.String(length=40), nullable=True),
        sa.Column("conversation_id", sa.String(length=128), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=True),
        sa.Column("extension", sa.String(length=20), nullable=True),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("fs_path", sa.String(length=500), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attachment_id", sa.Integer(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by", sa.String(length=64), nullable=True),
        sa.Column("deleted_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_recording")),
        sa.UniqueConstraint("file_name", name=op.f("uq_call_recording_file_name")),
    )
    with op.batch_alter_table("call_recording", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_recording_handoff_id"), ["handoff_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_call_recording_ticket_id"), ["ticket_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_call_recording_conversation_id"), ["conversation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_call_recording_started_at"), ["started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_call_recording_attachment_id"), ["attachment_id"], unique=False)


def downgrade() -> None:
    op.drop_table("call_recording")

"""chat delivery: what each chat conversation was last given (issue 14, resuming after a crash)

Revision ID: 0012_i14a_chat_delivery
Revises: 0011_i11b_surveys
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_i14a_chat_delivery"
down_revision: str | None = "0011_i11b_surveys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_delivery",
        sa.Column("conversation_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("last_step", sa.String(length=8), nullable=True),
        sa.Column("delivered_message_id", sa.String(length=64), nullable=True),
        sa.Column("announced_ticket_ids", sa.JSON(), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id"),
    )


def downgrade() -> None:
    op.drop_table("chat_delivery")

"""index reports by conversation

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

A hang-up after A10 is recorded as "accepted", not "abandoned": the bot asks whether
the conversation made a report, so reports are looked up by conversation id.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_report_conversation_id", "report", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_report_conversation_id", table_name="report")

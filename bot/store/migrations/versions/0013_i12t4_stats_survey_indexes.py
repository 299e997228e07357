"""statistics: the surveys by when they ended, second dispatches by when they were made (T4, issue 12)

The daily rollup's survey cube (bot/stats/cubes.py) reads a stretch of days of each; without
these it scans the whole table for every stretch it recounts (the dashboard: every 30 s).

Revision ID: 0013_i12t4_stats_survey_indexes
Revises: 0012_i14a_chat_delivery
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013_i12t4_stats_survey_indexes"
down_revision: str | None = "0012_i14a_chat_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_survey_finished_at", "survey", "finished_at"),
    ("ix_second_dispatch_created", "second_dispatch", "created"),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column], unique=False)


def downgrade() -> None:
    for name, table, _column in INDEXES:
        op.drop_index(name, table_name=table)

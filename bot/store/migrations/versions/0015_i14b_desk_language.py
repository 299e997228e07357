"""desk language: each desk account's language, Mandarin unless the account chose English (issue 14 item 5)

Revision ID: 0015_i14b_desk_language
Revises: 0014_i12q_quality
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_i14b_desk_language"
down_revision: str | None = "0014_i12q_quality"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL: the account has not chosen; the desk's default (HOTLINE_DESK_LANGUAGE, zh) applies.
    with op.batch_alter_table("desk_user") as batch:
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("desk_user") as batch:
        batch.drop_column("language")

"""operator desk: accounts, sessions, sign-in throttle; who took a handoff

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

The desk (bot/desk/) signs operators in with a role (junior, senior, centre, manager,
admin), keeps their sessions server-side, throttles failed sign-ins per username, and
records which operator took a waiting caller (J1) and when.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "desk_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("branch", sa.String(length=100), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_user")),
        sa.UniqueConstraint("username", name=op.f("uq_desk_user_username")),
    )
    op.create_table(
        "desk_session",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["desk_user.id"], name=op.f("fk_desk_session_user_id_desk_user"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_desk_session")),
    )
    with op.batch_alter_table("desk_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_desk_session_expires"), ["expires"], unique=False)
        batch_op.create_index(batch_op.f("ix_desk_session_user_id"), ["user_id"], unique=False)

    op.create_table(
        "desk_login_throttle",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_desk_login_throttle")),
    )
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.add_column(sa.Column("taken_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.drop_column("taken_at")
        batch_op.drop_column("taken_by")
    op.drop_table("desk_login_throttle")
    with op.batch_alter_table("desk_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_desk_session_user_id"))
        batch_op.drop_index(batch_op.f("ix_desk_session_expires"))
    op.drop_table("desk_session")
    op.drop_table("desk_user")

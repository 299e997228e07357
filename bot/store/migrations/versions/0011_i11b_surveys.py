"""surveys: the satisfaction survey of every resolved fault report (U3–U5)

Revision ID: 0011_i11b_surveys
Revises: 0010_i12t_stats
Create Date: 2026-12-07

One survey per resolved ticket, its attempts (calls, chat visits), the customers"
do-not-call list and quiet days, which browser a web-chat conversation ran in (the
survey is offered there), second dispatches (U5) and the install"s own secrets (the
signed survey link"s key when no setting gives one).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_i11b_surveys"
down_revision: str | None = "0010_i12t_stats"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_browser",
        sa.Column("conversation_id", sa.String(length=128), nullable=False),
        sa.Column("browser_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_chat_browser"))
    )
    with op.batch_alter_table("chat_browser", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chat_browser_browser_id"), ["browser_id"], unique=False)

    op.create_table(
        "contact_preference",
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("do_not_call", sa.Boolean(), nullable=False),
        sa.Column("quiet_days", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_contact_preference"))
    )
    op.create_table(
        "install_secret",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_install_secret"))
    )
    op.create_table(
        "second_dispatch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("first_ticket_id", sa.String(length=40), nullable=False),
        sa.Column("ticket_id", sa.String(length=40), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=True),
        sa.Column("why", sa.String(length=20), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_second_dispatch")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_second_dispatch_ticket_id"))
    )
    with op.batch_alter_table("second_dispatch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_second_dispatch_first_ticket_id"), ["first_ticket_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_second_dispatch_survey_id"), ["survey_id"], unique=False)

    op.create_table(
        "survey",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("state_reason", sa.String(length=200), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts_made", sa.Integer(), nullable=False),
        sa.Column("fixed", sa.Boolean(), nullable=True),
        sa.Column("attitude", sa.Integer(), nullable=True),
        sa.Column("quality", sa.Integer(), nullable=True),
        sa.Column("wants_comment", sa.Boolean(), nullable=True),
        sa.Column("comment_text", sa.String(length=2000), nullable=True),
        sa.Column("comment_recording", sa.String(length=200), nullable=True),
        sa.Column("stopped_at", sa.String(length=20), nullable=True),
        sa.Column("result", sa.String(length=20), nullable=True),
        sa.Column("conversation_id", sa.String(length=128), nullable=True),
        sa.Column("asked_by", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cause", sa.String(length=20), nullable=True),
        sa.Column("cause_note", sa.String(length=2000), nullable=True),
        sa.Column("cause_by", sa.String(length=64), nullable=True),
        sa.Column("cause_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("explained_how", sa.String(length=20), nullable=True),
        sa.Column("explained_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("explanation_accepted", sa.Boolean(), nullable=True),
        sa.Column("staff_member", sa.String(length=100), nullable=True),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("second_ticket_id", sa.String(length=40), nullable=True),
        sa.Column("link_nonce", sa.String(length=40), nullable=True),
        sa.Column("link_expires", sa.DateTime(timezone=True), nullable=True),
        sa.Column("link_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], name=op.f("fk_survey_ticket_id_ticket"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_survey_ticket_id"))
    )
    with op.batch_alter_table("survey", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_survey_conversation_id"), ["conversation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_survey_created"), ["created"], unique=False)
        batch_op.create_index(batch_op.f("ix_survey_next_attempt_at"), ["next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_survey_result"), ["result"], unique=False)
        batch_op.create_index(batch_op.f("ix_survey_state"), ["state"], unique=False)

    op.create_table(
        "survey_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("asked_by", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("hangup_cause", sa.String(length=64), nullable=True),
        sa.Column("outbound_call_id", sa.Integer(), nullable=True),
        sa.Column("conversation_id", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(["survey_id"], ["survey.id"], name=op.f("fk_survey_attempt_survey_id_survey"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_attempt")),
        sa.UniqueConstraint("survey_id", "n", name="uq_survey_attempt_n")
    )
    with op.batch_alter_table("survey_attempt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_survey_attempt_outbound_call_id"), ["outbound_call_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_survey_attempt_survey_id"), ["survey_id"], unique=False)



def downgrade() -> None:
    for table in ("survey_attempt", "survey", "second_dispatch", "install_secret", "contact_preference",
                  "chat_browser"):
        op.drop_table(table)

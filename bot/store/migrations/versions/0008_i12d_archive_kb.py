"""the archive (D1), the knowledge base (D2) and the world's working calendar

Revision ID: 0008_i12d
Revises: 0007_i11a_jobs
Create Date: 2026-12-07

- ``archive_record``: immutable archive records. Triggers refuse UPDATE and DELETE on
  both SQLite and PostgreSQL (TRUNCATE, an administrator's act, stays possible).
- ``kb_task``, ``kb_article``, ``kb_article_version``, ``kb_article_event``: hard-case
  tasks and articles with their history.
- ``kb_search``: each version's words; SQLite keeps an FTS5 table ``kb_fts`` in step
  with it by triggers, PostgreSQL a generated ``tsv`` column with a GIN index.
- ``working_calendar``: the world's working hours as loaded.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_i12d"
down_revision: str | None = "0007_i11a_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)

SQLITE_ARCHIVE_GUARDS = (
    """CREATE TRIGGER archive_record_no_update BEFORE UPDATE ON archive_record
       BEGIN SELECT RAISE(ABORT, 'archive records are immutable (D1): no UPDATE'); END""",
    """CREATE TRIGGER archive_record_no_delete BEFORE DELETE ON archive_record
       BEGIN SELECT RAISE(ABORT, 'archive records are immutable (D1): no DELETE'); END""",
)
PG_ARCHIVE_GUARD = (
    """CREATE FUNCTION archive_record_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'archive records are immutable (D1): no %', TG_OP; END $$""",
    """CREATE TRIGGER archive_record_immutable BEFORE UPDATE OR DELETE ON archive_record
       FOR EACH ROW EXECUTE FUNCTION archive_record_immutable()""",
)
SQLITE_FTS = (
    """CREATE VIRTUAL TABLE kb_fts USING fts5(title, body, chars, content='kb_search',
       content_rowid='version_id', tokenize='unicode61')""",
    """CREATE TRIGGER kb_search_ai AFTER INSERT ON kb_search BEGIN
       INSERT INTO kb_fts(rowid, title, body, chars) VALUES (new.version_id, new.title, new.body, new.chars); END""",
    """CREATE TRIGGER kb_search_ad AFTER DELETE ON kb_search BEGIN
       INSERT INTO kb_fts(kb_fts, rowid, title, body, chars)
       VALUES ('delete', old.version_id, old.title, old.body, old.chars); END""",
    """CREATE TRIGGER kb_search_au AFTER UPDATE ON kb_search BEGIN
       INSERT INTO kb_fts(kb_fts, rowid, title, body, chars)
       VALUES ('delete', old.version_id, old.title, old.body, old.chars);
       INSERT INTO kb_fts(rowid, title, body, chars) VALUES (new.version_id, new.title, new.body, new.chars); END""",
)
PG_TSV = (
    """ALTER TABLE kb_search ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
       setweight(to_tsvector('simple'::regconfig, title), 'A') ||
       setweight(to_tsvector('simple'::regconfig, body), 'B') ||
       setweight(to_tsvector('simple'::regconfig, chars), 'D')) STORED""",
    "CREATE INDEX ix_kb_search_tsv ON kb_search USING gin (tsv)",
)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"

    op.create_table(
        "working_calendar",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("hours", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_working_calendar")),
    )

    op.create_table(
        "archive_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("subkind", sa.String(length=30), nullable=True),
        sa.Column("source_table", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("run_day", sa.Date(), nullable=False),
        sa.Column("finished_at", WHEN, nullable=False),
        sa.Column("archived_at", WHEN, nullable=False),
        sa.Column("ticket_id", sa.String(length=40), nullable=True),
        sa.Column("conversation_id", sa.String(length=128), nullable=True),
        sa.Column("fault_number", sa.String(length=20), nullable=True),
        sa.Column("fault_class", sa.String(length=100), nullable=True),
        sa.Column("fault_class_source", sa.String(length=20), nullable=True),
        sa.Column("branch", sa.String(length=100), nullable=True),
        sa.Column("channel", sa.String(length=40), nullable=True),
        sa.Column("outcome", sa.String(length=40), nullable=True),
        sa.Column("step", sa.String(length=8), nullable=True),
        sa.Column("customer_type", sa.String(length=40), nullable=True),
        sa.Column("big_customer", sa.Boolean(), nullable=False),
        sa.Column("symptom_category", sa.String(length=40), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("author", sa.String(length=100), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_record")),
        sa.UniqueConstraint("source_table", "source_id", "kind", name="uq_archive_record_source"),
    )
    with op.batch_alter_table("archive_record", schema=None) as batch_op:
        for column in ("kind", "day", "run_day", "ticket_id", "fault_class", "branch"):
            batch_op.create_index(batch_op.f(f"ix_archive_record_{column}"), [column], unique=False)

    op.create_table(
        "kb_task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_task_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.String(length=40), nullable=True),
        sa.Column("handoff_id", sa.Integer(), nullable=True),
        sa.Column("junior", sa.String(length=64), nullable=False),
        sa.Column("senior", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("senior_note", sa.Text(), nullable=True),
        sa.Column("created", WHEN, nullable=False),
        sa.Column("due_at", WHEN, nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("done_at", WHEN, nullable=True),
        sa.Column("done_by", sa.String(length=64), nullable=True),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_task")),
        sa.UniqueConstraint("source_task_id", name=op.f("uq_kb_task_source_task_id")),
    )
    with op.batch_alter_table("kb_task", schema=None) as batch_op:
        for column in ("ticket_id", "due_at", "state", "article_id"):
            batch_op.create_index(batch_op.f(f"ix_kb_task_{column}"), [column], unique=False)

    op.create_table(
        "kb_article",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("published_version", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created", WHEN, nullable=False),
        sa.Column("updated", WHEN, nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", WHEN, nullable=True),
        sa.Column("retired_by", sa.String(length=64), nullable=True),
        sa.Column("retired_at", WHEN, nullable=True),
        sa.Column("retire_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_article")),
    )
    with op.batch_alter_table("kb_article", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_article_state"), ["state"], unique=False)

    op.create_table(
        "kb_article_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("fault_class", sa.String(length=100), nullable=True),
        sa.Column("symptoms", sa.JSON(), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["kb_article.id"],
                                name=op.f("fk_kb_article_version_article_id_kb_article")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_article_version")),
        sa.UniqueConstraint("article_id", "version", name="uq_kb_article_version_article_version"),
    )
    with op.batch_alter_table("kb_article_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_article_version_article_id"), ["article_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_kb_article_version_fault_class"), ["fault_class"], unique=False)

    op.create_table(
        "kb_article_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["article_id"], ["kb_article.id"],
                                name=op.f("fk_kb_article_event_article_id_kb_article")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_article_event")),
    )
    with op.batch_alter_table("kb_article_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_article_event_article_id"), ["article_id"], unique=False)

    op.create_table(
        "kb_search",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("chars", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_kb_search")),
    )
    with op.batch_alter_table("kb_search", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_search_article_id"), ["article_id"], unique=False)

    for statement in (SQLITE_ARCHIVE_GUARDS + SQLITE_FTS) if sqlite else (PG_ARCHIVE_GUARD + PG_TSV):
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("DROP TABLE IF EXISTS kb_fts")
    op.drop_table("kb_search")
    op.drop_table("kb_article_event")
    op.drop_table("kb_article_version")
    op.drop_table("kb_article")
    op.drop_table("kb_task")
    op.drop_table("archive_record")  # its triggers go with it
    if not sqlite:
        op.execute("DROP FUNCTION IF EXISTS archive_record_immutable()")
    op.drop_table("working_calendar")

"""The knowledge base (D2): hard cases become the data manager's tasks, articles are
written, approved by a senior, edited with history and retired — never deleted.

- A junior's transfer that a senior graded *correct* (S3) is a hard case. It becomes a
  :class:`KbTask` for the data manager, due half a working day after the grade (the
  world's working hours, bot/world/calendar.py), overdue when missed (Q4 checks it).
  The task is done when its article is submitted for approval, or when the data
  manager records that an existing article already covers it.
- An :class:`KbArticle` (question, answer, fault class, symptom categories, keywords)
  has versions (:class:`KbArticleVersion`, each kept: who, when, why) and a history of
  what happened to it (:class:`KbArticleEvent`). Its state: ``draft`` → ``submitted``
  (waits for a senior) → ``approved`` (juniors see it), or back to ``draft`` when a
  senior sends it back with a reason; ``retired`` articles are no longer shown to
  juniors and stay readable to the data manager. Juniors always see the last
  *approved* version (``published_version``): an edit of an approved article waits for
  the senior again while the approved text stays in use.

Nothing here deletes a row; the code has no path for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, cast

import structlog
from sqlalchemy import JSON, CursorResult, Text, UniqueConstraint, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, func, select

from bot.store.calendar import service_calendar
from bot.store.errors import Conflict, NotFound, ServiceError
from bot.store.models import DeskTask, DeskTaskKind, FaultClassRow, UTCDateTime, utc, utcnow

log = structlog.get_logger(__name__)

WRITERS = ("datamanager", "admin")  # D2: the data manager writes and retires
APPROVERS = ("senior", "admin")  # D2: a senior approves before juniors see an article
SYMPTOMS = ("no_dial_tone", "noise", "cannot_call_out", "cannot_receive", "broadband_down", "other")
MAX_QUESTION = 500
MAX_ANSWER = 8000
MAX_REASON = 2000
MAX_KEYWORDS = 20
MAX_KEYWORD = 40


class ArticleState(str, Enum):
    draft = "draft"
    submitted = "submitted"
    approved = "approved"
    retired = "retired"


class KbTaskState(str, Enum):
    open = "open"
    done = "done"


def _when() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime)


def _maybe_when() -> Any:
    return Field(default=None, sa_type=UTCDateTime)


class KbTask(SQLModel, table=True):
    """D2: a hard case for the data manager to enter into the knowledge base."""

    __tablename__ = "kb_task"

    id: int | None = Field(default=None, primary_key=True)
    source_task_id: int = Field(unique=True)  # the senior_transfer DeskTask graded correct (S3)
    ticket_id: str | None = Field(default=None, max_length=40, index=True)
    handoff_id: int | None = None
    junior: str = Field(max_length=64)  # who transferred
    senior: str = Field(max_length=64)  # who judged the transfer correct
    reason: str = Field(sa_type=Text)  # the junior's reason for the transfer
    senior_note: str | None = Field(default=None, sa_type=Text)  # the senior's note with the grade
    created: datetime = _when()  # when the senior graded it
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)  # half a working day later
    state: str = Field(default=KbTaskState.open.value, max_length=10, index=True)
    done_at: datetime | None = _maybe_when()
    done_by: str | None = Field(default=None, max_length=64)
    article_id: int | None = Field(default=None, index=True)
    outcome: str | None = Field(default=None, max_length=20)  # "written" | "covered"
    note: str | None = Field(default=None, sa_type=Text)


class KbArticle(SQLModel, table=True):
    __tablename__ = "kb_article"

    id: int | None = Field(default=None, primary_key=True)
    state: str = Field(default=ArticleState.draft.value, max_length=12, index=True)
    current_version: int = 1  # the latest version written
    published_version: int | None = None  # the version juniors see (the last approved)
    created_by: str = Field(max_length=64)
    created: datetime = _when()
    updated: datetime = _when()
    approved_by: str | None = Field(default=None, max_length=64)
    approved_at: datetime | None = _maybe_when()
    retired_by: str | None = Field(default=None, max_length=64)
    retired_at: datetime | None = _maybe_when()
    retire_reason: str | None = Field(default=None, sa_type=Text)


class KbArticleVersion(SQLModel, table=True):
    """One version of an article as written; never changed once written."""

    __tablename__ = "kb_article_version"
    __table_args__ = (UniqueConstraint("article_id", "version", name="uq_kb_article_version_article_version"),)

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="kb_article.id", index=True)
    version: int
    question: str = Field(sa_type=Text)
    answer: str = Field(sa_type=Text)
    fault_class: str | None = Field(default=None, max_length=100, index=True)
    symptoms: list[str] = Field(default_factory=list, sa_type=JSON)
    keywords: list[str] = Field(default_factory=list, sa_type=JSON)
    author: str = Field(max_length=64)
    reason: str | None = Field(default=None, sa_type=Text)  # why this version (edits need one)
    at: datetime = _when()


class KbArticleEvent(SQLModel, table=True):
    """What happened to an article: created, edited, submitted, approved, sent back, retired."""

    __tablename__ = "kb_article_event"

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="kb_article.id", index=True)
    version: int
    action: str = Field(max_length=20)
    by: str = Field(max_length=64)
    at: datetime = _when()
    note: str | None = Field(default=None, sa_type=Text)


class KbSearchRow(SQLModel, table=True):
    """The search index's words for one article version (bot/store/kb_search.py);
    derived data, rebuilt by ``python -m bot kb reindex``. On SQLite an FTS5 table
    (``kb_fts``) follows it; on PostgreSQL a generated ``tsv`` column does."""

    __tablename__ = "kb_search"

    version_id: int = Field(primary_key=True)
    article_id: int = Field(index=True)
    title: str = Field(default="", sa_type=Text)
    body: str = Field(default="", sa_type=Text)
    chars: str = Field(default="", sa_type=Text)


# ------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class ArticleInput:
    question: str
    answer: str
    fault_class: str | None = None
    symptoms: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()

    def cleaned(self, s: Session) -> ArticleInput:
        """The same input, trimmed and checked; ServiceError (400) naming what is wrong."""
        question, answer = self.question.strip(), self.answer.strip()
        if not question:
            raise ServiceError("write the question (what the caller asks or reports)", code="question_required")
        if not answer:
            raise ServiceError("write the answer", code="answer_required")
        if len(question) > MAX_QUESTION:
            raise ServiceError(f"the question is longer than {MAX_QUESTION} characters", code="question_too_long")
        if len(answer) > MAX_ANSWER:
            raise ServiceError(f"the answer is longer than {MAX_ANSWER} characters", code="answer_too_long")
        fault_class = (self.fault_class or "").strip() or None
        if fault_class is not None:
            known = [r.name for r in s.exec(select(FaultClassRow))]
            if known and fault_class not in known:
                raise ServiceError(f"unknown fault class {fault_class!r}; one of {', '.join(known)}",
                                   code="invalid_fault_class")
        symptoms = tuple(dict.fromkeys(x.strip() for x in self.symptoms if x.strip()))
        unknown = [x for x in symptoms if x not in SYMPTOMS]
        if unknown:
            raise ServiceError(f"unknown symptom categor{'ies' if len(unknown) > 1 else 'y'} "
                               f"{', '.join(unknown)}; one of {', '.join(SYMPTOMS)}", code="invalid_symptom")
        keywords = tuple(dict.fromkeys(k.strip() for k in self.keywords if k.strip()))
        if len(keywords) > MAX_KEYWORDS:
            raise ServiceError(f"at most {MAX_KEYWORDS} keywords", code="too_many_keywords")
        if any(len(k) > MAX_KEYWORD for k in keywords):
            raise ServiceError(f"a keyword is at most {MAX_KEYWORD} characters", code="keyword_too_long")
        return ArticleInput(question, answer, fault_class, symptoms, keywords)


def split_keywords(raw: str) -> tuple[str, ...]:
    """A keywords box: separated by commas (either width), 、, semicolons or new lines."""
    import re

    return tuple(k.strip() for k in re.split(r"[,，、;；\n]+", raw or "") if k.strip())


def _reason(reason: str | None, *, required: bool, what: str) -> str | None:
    text = (reason or "").strip() or None
    if required and text is None:
        raise ServiceError(f"say why ({what})", code="reason_required")
    if text is not None and len(text) > MAX_REASON:
        raise ServiceError(f"the reason is longer than {MAX_REASON} characters", code="reason_too_long")
    return text


def _check_role(role: str, allowed: tuple[str, ...], what: str) -> None:
    if role not in allowed:
        raise ServiceError(f"a {role} may not {what}", code="forbidden_action")


# ------------------------------------------------------------------ tasks


def ensure_hard_case_tasks(s: Session, timezone: str, *, now: datetime | None = None) -> list[int]:
    """Every transfer graded correct (S3) has its knowledge-base task, due half a working
    day after the grade. Idempotent: one task per hard case (unique source task)."""
    have = select(KbTask.source_task_id)
    cases = s.exec(select(DeskTask).where(DeskTask.kind == DeskTaskKind.senior_transfer.value,
                                          DeskTask.grade == "correct", col(DeskTask.id).not_in(have))
                   .order_by(col(DeskTask.id))).all()
    if not cases:
        return []
    calendar = service_calendar(s, timezone)
    made = []
    for case in cases:
        assert case.id is not None
        graded = utc(case.graded_at) if case.graded_at else (now or utcnow())
        task = KbTask(source_task_id=case.id, ticket_id=case.ticket_id, handoff_id=case.handoff_id,
                      junior=case.created_by, senior=case.graded_by or "?", reason=case.reason,
                      senior_note=case.grade_note, created=graded, due_at=calendar.half_day_after(graded))
        try:
            with s.begin_nested():  # a concurrent grade made it first: fine, it exists
                s.add(task)
        except IntegrityError:
            continue
        assert task.id is not None
        made.append(task.id)
        log.info("kb.task_opened", task_id=task.id, hard_case=case.id, due_at=task.due_at.isoformat())
    return made


def task_status(task: KbTask, now: datetime) -> str:
    """open | overdue | done | done_late (Q4: timely)."""
    due = utc(task.due_at)
    if task.state == KbTaskState.done.value:
        return "done_late" if task.done_at is not None and utc(task.done_at) > due else "done"
    return "overdue" if now > due else "open"


def list_tasks(s: Session, *, state: str | None = None, overdue: bool | None = None, limit: int = 200,
               now: datetime | None = None) -> list[KbTask]:
    """Open tasks first by due time; done ones after, newest first."""
    now = now or utcnow()
    q = select(KbTask)
    if state is not None:
        q = q.where(KbTask.state == state)
    if overdue is True:
        q = q.where(KbTask.state == KbTaskState.open.value, col(KbTask.due_at) < now)
    elif overdue is False:
        q = q.where(or_(col(KbTask.state) != KbTaskState.open.value, col(KbTask.due_at) >= now))
    q = q.order_by((col(KbTask.state) == KbTaskState.done.value), col(KbTask.due_at), col(KbTask.id))
    return list(s.exec(q.limit(limit)))


def get_task(s: Session, task_id: int) -> KbTask:
    task = s.get(KbTask, task_id)
    if task is None:
        raise NotFound(f"no knowledge-base task {task_id}", code="task_not_found")
    return task


def _finish_task(s: Session, task_id: int, actor: str, article_id: int, outcome: str, note: str | None,
                 now: datetime) -> None:
    result = s.execute(update(KbTask).where(col(KbTask.id) == task_id, col(KbTask.state) == KbTaskState.open.value)
                       .values(state=KbTaskState.done.value, done_at=now, done_by=actor, article_id=article_id,
                               outcome=outcome, note=note))
    if cast("CursorResult[Any]", result).rowcount != 1:
        task = get_task(s, task_id)
        raise Conflict(f"task {task_id} was already done by {task.done_by}", code="task_done")


def cover_task(s: Session, task_id: int, actor: str, role: str, article_id: int, note: str | None = None, *,
               now: datetime | None = None) -> KbTask:
    """The hard case is answered by an article already in the knowledge base."""
    _check_role(role, WRITERS, "close knowledge-base tasks")
    article = get_article(s, article_id)
    if article.state == ArticleState.retired.value:
        raise ServiceError(f"article {article_id} is retired", code="article_retired")
    _finish_task(s, task_id, actor, article_id, "covered", _reason(note, required=False, what="note"),
                 now or utcnow())
    return get_task(s, task_id)


# ------------------------------------------------------------------ articles


def get_article(s: Session, article_id: int) -> KbArticle:
    article = s.get(KbArticle, article_id, populate_existing=True)
    if article is None:
        raise NotFound(f"no article {article_id}", code="article_not_found")
    return article


def get_version(s: Session, article_id: int, version: int) -> KbArticleVersion:
    row = s.exec(select(KbArticleVersion).where(KbArticleVersion.article_id == article_id,
                                                KbArticleVersion.version == version)).first()
    if row is None:
        raise NotFound(f"article {article_id} has no version {version}", code="version_not_found")
    return row


def versions(s: Session, article_id: int) -> list[KbArticleVersion]:
    return list(s.exec(select(KbArticleVersion).where(KbArticleVersion.article_id == article_id)
                       .order_by(col(KbArticleVersion.version).desc())))


def events(s: Session, article_id: int) -> list[KbArticleEvent]:
    return list(s.exec(select(KbArticleEvent).where(KbArticleEvent.article_id == article_id)
                       .order_by(col(KbArticleEvent.id).desc())))


def _event(s: Session, article: KbArticle, action: str, by: str, now: datetime, note: str | None = None) -> None:
    assert article.id is not None
    s.add(KbArticleEvent(article_id=article.id, version=article.current_version, action=action, by=by, at=now,
                         note=note))


def _add_version(s: Session, article_id: int, version: int, data: ArticleInput, author: str,
                 reason: str | None, now: datetime) -> KbArticleVersion:
    from bot.store import kb_search  # the index follows every version written

    row = KbArticleVersion(article_id=article_id, version=version, question=data.question, answer=data.answer,
                           fault_class=data.fault_class, symptoms=list(data.symptoms),
                           keywords=list(data.keywords), author=author, reason=reason, at=now)
    s.add(row)
    s.flush()
    kb_search.index_version(s, row)
    return row


def create_article(s: Session, data: ArticleInput, author: str, role: str, *, task_id: int | None = None,
                   submit: bool = False, now: datetime | None = None) -> KbArticle:
    """A new article (version 1, a draft); from a hard-case task, the task is linked and,
    once the article is submitted, done."""
    _check_role(role, WRITERS, "write articles")
    data = data.cleaned(s)
    now = now or utcnow()
    if task_id is not None:
        task = get_task(s, task_id)
        if task.state != KbTaskState.open.value:
            raise Conflict(f"task {task_id} was already done by {task.done_by}", code="task_done")
    article = KbArticle(created_by=author, created=now, updated=now)
    s.add(article)
    s.flush()
    assert article.id is not None
    _add_version(s, article.id, 1, data, author, "first version", now)
    _event(s, article, "created", author, now, f"hard case task {task_id}" if task_id is not None else None)
    if task_id is not None:
        s.execute(update(KbTask).where(col(KbTask.id) == task_id).values(article_id=article.id))
    log.info("kb.article_created", article_id=article.id, author=author, task_id=task_id)
    if submit:
        submit_article(s, article.id, author, role, now=now)
    return get_article(s, article.id)


def _changed_since(article: KbArticle, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != article.current_version:
        raise Conflict(f"article {article.id} has a newer version ({article.current_version}, you edited "
                       f"{expected_version}); reload it and edit again", code="stale")


def _move(s: Session, article: KbArticle, from_states: tuple[str, ...], **values: Any) -> None:
    """Change the article only if it is still in one of ``from_states`` at its version
    (two people at once: one wins, the other gets a conflict)."""
    result = s.execute(update(KbArticle).where(col(KbArticle.id) == article.id,
                                               col(KbArticle.state).in_(from_states),
                                               col(KbArticle.current_version) == article.current_version)
                       .values(**values))
    if cast("CursorResult[Any]", result).rowcount != 1:
        raise Conflict(f"article {article.id} was changed meanwhile; reload it", code="stale")
    s.refresh(article)


def edit_article(s: Session, article_id: int, data: ArticleInput, author: str, role: str, reason: str | None, *,
                 expected_version: int | None = None, submit: bool = False,
                 now: datetime | None = None) -> KbArticle:
    """A new version (who, when, why). An approved article goes back to the senior; its
    approved version stays the one juniors see until the new one is approved."""
    _check_role(role, WRITERS, "edit articles")
    data = data.cleaned(s)
    why = _reason(reason, required=True, what="what changed and why")
    now = now or utcnow()
    article = get_article(s, article_id)
    if article.state == ArticleState.retired.value:
        raise ServiceError(f"article {article_id} is retired; retired articles are not edited",
                           code="article_retired")
    _changed_since(article, expected_version)
    version = article.current_version + 1
    _move(s, article, (ArticleState.draft.value, ArticleState.submitted.value, ArticleState.approved.value),
          current_version=version, state=ArticleState.draft.value, updated=now)
    _add_version(s, article_id, version, data, author, why, now)
    _event(s, article, "edited", author, now, why)
    log.info("kb.article_edited", article_id=article_id, version=version, author=author)
    if submit:
        submit_article(s, article_id, author, role, now=now)
    return article


def _article_at(s: Session, article_id: int, expected_version: int | None, state: ArticleState,
                what: str) -> KbArticle:
    """The article, as the actor saw it (its version) and in the state ``what`` needs."""
    article = get_article(s, article_id)
    _changed_since(article, expected_version)
    if article.state != state.value:
        raise Conflict(f"article {article_id} is {article.state}: {what}", code="illegal_state")
    return article


def submit_article(s: Session, article_id: int, actor: str, role: str, *, expected_version: int | None = None,
                   now: datetime | None = None) -> KbArticle:
    """The current version goes to a senior for approval; open hard-case tasks linked to
    the article are done now (D2: entered into the knowledge base)."""
    _check_role(role, WRITERS, "submit articles")
    now = now or utcnow()
    article = _article_at(s, article_id, expected_version, ArticleState.draft, "only a draft is submitted")
    _move(s, article, (ArticleState.draft.value,), state=ArticleState.submitted.value, updated=now)
    _event(s, article, "submitted", actor, now)
    for task in s.exec(select(KbTask).where(KbTask.article_id == article_id,
                                            KbTask.state == KbTaskState.open.value)):
        assert task.id is not None
        _finish_task(s, task.id, actor, article_id, "written", None, now)
    return article


def approve_article(s: Session, article_id: int, senior: str, role: str, note: str | None = None, *,
                    expected_version: int | None = None, now: datetime | None = None) -> KbArticle:
    """D2: a senior approves the submitted version; juniors see it from now on."""
    _check_role(role, APPROVERS, "approve articles")
    now = now or utcnow()
    article = _article_at(s, article_id, expected_version, ArticleState.submitted,
                          "only a submitted article is approved")
    _move(s, article, (ArticleState.submitted.value,), state=ArticleState.approved.value,
          published_version=article.current_version, approved_by=senior, approved_at=now, updated=now)
    _event(s, article, "approved", senior, now, _reason(note, required=False, what="note"))
    log.info("kb.article_approved", article_id=article_id, version=article.current_version, senior=senior)
    return article


def send_back_article(s: Session, article_id: int, senior: str, role: str, reason: str | None, *,
                      expected_version: int | None = None, now: datetime | None = None) -> KbArticle:
    """A senior does not approve: back to the data manager as a draft, with the reason."""
    _check_role(role, APPROVERS, "review articles")
    why = _reason(reason, required=True, what="what must change: the data manager reads it")
    now = now or utcnow()
    article = _article_at(s, article_id, expected_version, ArticleState.submitted,
                          "only a submitted article is sent back")
    _move(s, article, (ArticleState.submitted.value,), state=ArticleState.draft.value, updated=now)
    _event(s, article, "sent_back", senior, now, why)
    return article


def retire_article(s: Session, article_id: int, actor: str, role: str, reason: str | None, *,
                   now: datetime | None = None) -> KbArticle:
    """No longer shown to juniors nor suggested; kept, with every version, and readable
    to the data manager and seniors."""
    _check_role(role, WRITERS, "retire articles")
    why = _reason(reason, required=True, what="why the article is retired")
    now = now or utcnow()
    article = get_article(s, article_id)
    if article.state == ArticleState.retired.value:
        raise Conflict(f"article {article_id} was already retired by {article.retired_by}", code="illegal_state")
    _move(s, article, (ArticleState.draft.value, ArticleState.submitted.value, ArticleState.approved.value),
          state=ArticleState.retired.value, retired_by=actor, retired_at=now, retire_reason=why, updated=now)
    _event(s, article, "retired", actor, now, why)
    log.info("kb.article_retired", article_id=article_id, by=actor)
    return article


def list_articles(s: Session, *, states: tuple[str, ...] | None = None, limit: int = 200) -> list[KbArticle]:
    q = select(KbArticle)
    if states is not None:
        q = q.where(col(KbArticle.state).in_(states))
    return list(s.exec(q.order_by(col(KbArticle.updated).desc(), col(KbArticle.id).desc()).limit(limit)))


def visible_version(article: KbArticle, role: str) -> int | None:
    """Which version a post reads: juniors (and other posts) the approved one of an
    article in use; the data manager, seniors and admins the latest."""
    if role in WRITERS or role in APPROVERS:
        return article.current_version
    if article.state == ArticleState.retired.value:
        return None
    return article.published_version


def counts(s: Session, now: datetime | None = None) -> dict[str, int]:
    now = now or utcnow()

    def n(*where: Any, model: Any = KbArticle) -> int:
        return int(s.exec(select(func.count()).select_from(model).where(*where)).one())

    return {
        "tasks_open": n(KbTask.state == KbTaskState.open.value, model=KbTask),
        "tasks_overdue": n(KbTask.state == KbTaskState.open.value, col(KbTask.due_at) < now, model=KbTask),
        "drafts": n(KbArticle.state == ArticleState.draft.value),
        "submitted": n(KbArticle.state == ArticleState.submitted.value),
        "approved": n(KbArticle.state == ArticleState.approved.value),
        "retired": n(KbArticle.state == ArticleState.retired.value),
    }

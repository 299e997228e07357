"""D2, the knowledge base's workflow: a hard case (S3: a transfer a senior judged correct)
becomes the data manager's task, due half a working day later by the world's working
hours and overdue after; articles are written, approved by a senior, edited with every
version kept (who, when, why), sent back, retired — never deleted. Roles are checked by
the store itself. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from bot.store import knowledge, service, workflow
from bot.store.db import Database
from bot.store.errors import Conflict, ServiceError
from bot.store.knowledge import ArticleInput, KbTask
from bot.store.workflow import Actor

SH = ZoneInfo("Asia/Shanghai")
GRADED = datetime(2026, 3, 2, 16, 0, tzinfo=SH)  # Monday 16:00; the demo world works 08:30–12:00, 13:30–17:30
DUE = datetime(2026, 3, 3, 10, 45, tzinfo=SH)  # 1.5 h on Monday + 2.25 h on Tuesday = 3.75 h
SENIOR = Actor("sen", "senior")
ART = ArticleInput("电话没有拨号音", "先检查话机和电话线。", "用户线路故障", ("no_dial_tone",), ("拨号音", "话机"))


def hard_case(db: Database, *, grade: str = "correct", conversation: str = "c1") -> int:
    data = service.ReportData(conversation_id=conversation, channel="voice", language="zh", kind="new",
                              fault_number="057187650001", symptom_category="no_dial_tone",
                              symptom_text="没有拨号音")
    ticket_id = db.call(service.create_report, data).ticket_id
    transfer = db.call(workflow.open_senior_transfer, handoff_id=7, ticket_id=ticket_id, junior="jun",
                       reason="用户说换了话机也不行，我判断不了")
    db.call(workflow.grade_transfer, transfer, SENIOR, grade, "线路断线，已派单" if grade == "correct" else "不必转",
            now=GRADED, timezone="Asia/Shanghai")
    return transfer


def tasks(db: Database) -> list[KbTask]:
    return db.call(lambda s: list(s.exec(select(KbTask))))


def test_a_hard_case_is_a_task_due_in_half_a_working_day(demo_db: Database) -> None:
    transfer = hard_case(demo_db)
    hard_case(demo_db, grade="incorrect", conversation="c2")  # not a hard case: no task
    [task] = tasks(demo_db)
    assert (task.source_task_id, task.junior, task.senior, task.senior_note) == (transfer, "jun", "sen", "线路断线，已派单")
    assert task.due_at == DUE and task.state == "open"
    assert knowledge.task_status(task, DUE - timedelta(minutes=1)) == "open"
    assert knowledge.task_status(task, DUE + timedelta(minutes=1)) == "overdue"  # Q4 looks for these
    assert demo_db.call(knowledge.list_tasks, overdue=True, now=DUE + timedelta(minutes=1))[0].id == task.id
    assert demo_db.call(knowledge.list_tasks, overdue=True, now=DUE - timedelta(minutes=1)) == []
    assert demo_db.call(knowledge.ensure_hard_case_tasks, "Asia/Shanghai") == []  # one task per hard case


def test_written_submitted_approved_edited_retired(demo_db: Database) -> None:
    hard_case(demo_db)
    [task] = tasks(demo_db)
    late = DUE + timedelta(hours=1)
    article = demo_db.call(knowledge.create_article, ART, "dm", "datamanager", task_id=task.id, now=GRADED)
    assert article.id is not None and (article.state, article.current_version, article.published_version) == (
        "draft", 1, None)
    assert tasks(demo_db)[0].state == "open"  # a draft is not yet in the knowledge base
    demo_db.call(knowledge.submit_article, article.id, "dm", "datamanager", now=late)
    [task] = tasks(demo_db)
    assert (task.state, task.article_id, task.outcome) == ("done", article.id, "written")
    assert knowledge.task_status(task, late) == "done_late"
    # A senior sends it back (with a reason), the data manager edits (with a reason), a senior approves.
    with pytest.raises(ServiceError, match="say why"):
        demo_db.call(knowledge.send_back_article, article.id, "sen", "senior", "  ")
    demo_db.call(knowledge.send_back_article, article.id, "sen", "senior", "写清楚测试结果")
    better = ArticleInput(ART.question, "先检查话机和电话线；线路测试断线时派单。", ART.fault_class, ART.symptoms,
                          ART.keywords)
    demo_db.call(knowledge.edit_article, article.id, better, "dm", "datamanager", "加上测试结果", expected_version=1,
                 submit=True)
    approved = demo_db.call(knowledge.approve_article, article.id, "sen", "senior", expected_version=2)
    assert (approved.state, approved.published_version, approved.approved_by) == ("approved", 2, "sen")
    # An edit of an approved article waits for the senior; juniors keep version 2.
    edited = demo_db.call(knowledge.edit_article, article.id, ART, "dm", "datamanager", "简化", expected_version=2)
    assert (edited.state, edited.current_version, edited.published_version) == ("draft", 3, 2)
    assert knowledge.visible_version(edited, "junior") == 2 and knowledge.visible_version(edited, "senior") == 3
    with pytest.raises(Conflict, match="newer version"):  # someone holding version 2 edits again
        demo_db.call(knowledge.edit_article, article.id, ART, "dm2", "datamanager", "again", expected_version=2)
    retired = demo_db.call(knowledge.retire_article, article.id, "dm", "datamanager", "已合并到新条目")
    assert (retired.state, retired.retired_by) == ("retired", "dm") and knowledge.visible_version(retired, "junior") is None
    with pytest.raises(ServiceError, match="retired"):
        demo_db.call(knowledge.edit_article, article.id, ART, "dm", "datamanager", "复活", expected_version=3)

    def history(s: Session) -> tuple[list[tuple[int, str, str | None]], list[tuple[str, str]]]:
        return ([(v.version, v.author, v.reason) for v in knowledge.versions(s, article.id or 0)],
                [(e.action, e.by) for e in knowledge.events(s, article.id or 0)])

    versions, events = demo_db.call(history)
    assert versions == [(3, "dm", "简化"), (2, "dm", "加上测试结果"), (1, "dm", "first version")]
    assert events == [("retired", "dm"), ("edited", "dm"), ("approved", "sen"), ("submitted", "dm"),
                      ("edited", "dm"), ("sent_back", "sen"), ("submitted", "dm"), ("created", "dm")]
    assert demo_db.call(knowledge.get_version, article.id, 1).answer == ART.answer  # every version kept


@pytest.mark.parametrize(("role", "fn", "args"), [
    ("junior", knowledge.create_article, (ART, "x")),
    ("senior", knowledge.create_article, (ART, "x")),
    ("datamanager", knowledge.approve_article, ("x",)),
    ("junior", knowledge.retire_article, ("x", "why")),
])
def test_roles_are_checked_by_the_store(db: Database, role: str, fn: object, args: tuple[object, ...]) -> None:
    article = db.call(knowledge.create_article, ART, "dm", "datamanager", submit=True)
    call_args = (args[0], role, *args[1:]) if fn is knowledge.create_article else (article.id, args[0], role,
                                                                                    *args[1:])
    with pytest.raises(ServiceError) as refused:
        db.call(fn, *call_args)  # type: ignore[operator]
    assert refused.value.code == "forbidden_action"


def test_bad_articles_are_refused_with_reasons(demo_db: Database) -> None:
    for data, words in [(ArticleInput(" ", "a"), "question"), (ArticleInput("q", ""), "answer"),
                        (ArticleInput("q", "a", "没有这类"), "unknown fault class"),
                        (ArticleInput("q", "a", symptoms=("smoke",)), "unknown symptom"),
                        (ArticleInput("q", "a", keywords=tuple(str(i) for i in range(30))), "at most 20")]:
        with pytest.raises(ServiceError, match=words):
            demo_db.call(knowledge.create_article, data, "dm", "datamanager")
    assert knowledge.split_keywords("宽带, 光猫，红灯、LOS;;\n") == ("宽带", "光猫", "红灯", "LOS")


def test_a_hard_case_covered_by_an_existing_article(demo_db: Database) -> None:
    existing = demo_db.call(knowledge.create_article, ART, "dm", "datamanager")
    hard_case(demo_db)
    [task] = tasks(demo_db)
    done = demo_db.call(knowledge.cover_task, task.id, "dm", "datamanager", existing.id, "与条目1相同",
                        now=GRADED + timedelta(hours=1))
    assert (done.state, done.outcome, done.article_id, knowledge.task_status(done, DUE)) == (
        "done", "covered", existing.id, "done")
    with pytest.raises(Conflict, match="already done"):
        demo_db.call(knowledge.cover_task, task.id, "dm", "datamanager", existing.id)


def test_the_code_has_no_delete_path() -> None:
    source = open(knowledge.__file__, encoding="utf-8").read()
    assert "delete(" not in source and ".delete" not in source

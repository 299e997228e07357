"""The cubes: one SQL query each, counting the store's rows of a stretch of days by
local day and a few keys. The daily rollup (:mod:`bot.stats.rollup`) stores what they
count; every figure of a report is a sum over them (:mod:`bot.stats.figures`).

Each cube's query returns the columns ``day, k1 … k6, n, v`` (unused keys are ``''``,
``v`` is a sum where the cube has one, else 0). What each key means is in :data:`KEYS`
and, with the figures built on them, in ``bot/stats/FIGURES.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    String,
    Table,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from bot.sla.models import DeadlineViolation, DeadlineWatch
from bot.stats.sqltime import LocalTime, seconds_between
from bot.store.models import (
    ConversationOutcome,
    DeskTask,
    ExchangeRow,
    Handoff,
    LineRow,
    MeasurementCentreRow,
    Report,
    Ticket,
    TicketStatusChange,
)
from bot.store.survey_records import SecondDispatch, Survey


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


OUTCOME, HANDOFF, REPORT, TICKET = (_table(m) for m in (ConversationOutcome, Handoff, Report, Ticket))
CHANGE, TASK, LINE, EXCHANGE = (_table(m) for m in (TicketStatusChange, DeskTask, LineRow, ExchangeRow))
CENTRE_ROW = _table(MeasurementCentreRow)
WATCH, VIOLATION = _table(DeadlineWatch), _table(DeadlineViolation)
SURVEY, SECOND = _table(Survey), _table(SecondDispatch)

# Outcomes with which the bot settled a contact itself (A5, A6–A7, A10–A11, a normal end).
SETTLED_BY_BOT = ("accepted", "informed_repaired", "informed_engineering", "repeat_informed", "ended",
                  "progress_informed")
# T4: the workflow actions counted per measurement centre.
CENTRE_ACTIONS = ("approve_dispatch", "receipt", "return_to_review", "chase", "reopen")
WAIT_BUCKETS = ("0-15", "15-30", "30-60", "60-120", "120-300", "300+")

KEYS: dict[str, tuple[str, ...]] = {
    "contact": ("channel", "handled_by", "settled_at", "customer_type", "contained", "last_outcome"),
    "handoff": ("reason", "result", "wait_bucket", "queue"),
    "rep_kind": ("kind", "symptom", "fault_class", "channel"),
    "rep_place": ("kind", "branch", "exchange"),
    "rep_time": ("kind", "hour", "weekday"),
    "centre": ("centre", "action", "timeliness"),
    "deadline": ("centre", "event"),
    "survey": ("centre", "event", "detail", "result", "attitude", "quality"),
}


def _channel(column: Any) -> ColumnElement[str]:
    """T3's access channels: the phone (voice), the web chat, and anything else."""
    return case((column == "voice", literal("phone")), (column == "webchat", literal("webchat")),
                else_=literal("other"))


def _grouped(cube: str, lt: LocalTime, source: Any, v: str | None = None) -> Select[Any]:
    """Group a per-row subquery (columns ``when`` and the cube's keys) by local day and
    keys, as ``day, cube, k1 … k6, n, v`` (the rollup's columns)."""
    day = lt.day(source.c.when)
    keys = [source.c[k] for k in KEYS[cube]]
    padded = [*keys, *[literal("") for _ in range(6 - len(keys))]]
    total = func.sum(source.c[v]) if v is not None else literal(0.0)
    return select(day.label("day"), literal(cube).label("cube"),
                  *[k.label(f"k{i + 1}") for i, k in enumerate(padded)],
                  func.count().label("n"), total.label("v")).group_by(day, *keys)


# ------------------------------------------------------------------ contacts (T3)


def contact(s: Session, lt: LocalTime) -> Select[Any]:
    """One row per contact whose first outcome falls in the stretch (its day), with how
    it was handled, where it was settled, its channel, customer type and last outcome."""
    o, p, q = OUTCOME.alias("o"), OUTCOME.alias("p"), OUTCOME.alias("q")
    first = (
        select(o.c.conversation_id.label("cid"), func.min(o.c.at).label("first_at"))
        .where(o.c.at >= lt.start, o.c.at < lt.end,
               ~exists().where(p.c.conversation_id == o.c.conversation_id, p.c.at < lt.start))
        .group_by(o.c.conversation_id)
    ).cte("contacts")
    ranked = select(
        q.c.conversation_id, q.c.channel, q.c.outcome, q.c.step, q.c.fault_number,
        func.row_number().over(partition_by=q.c.conversation_id, order_by=(q.c.at, q.c.id)).label("rf"),
        func.row_number().over(partition_by=q.c.conversation_id, order_by=(q.c.at.desc(), q.c.id.desc())).label("rl"),
    ).where(q.c.conversation_id.in_(select(first.c.cid))).cte("ranked")
    per = select(
        ranked.c.conversation_id.label("cid"),
        func.max(case((ranked.c.rf == 1, ranked.c.channel))).label("channel"),
        func.max(case((ranked.c.rl == 1, ranked.c.outcome))).label("last_outcome"),
        func.max(case((ranked.c.rl == 1, ranked.c.step))).label("last_step"),
        func.max(ranked.c.fault_number).label("fault"),
    ).group_by(ranked.c.conversation_id).cte("per")
    h = HANDOFF.alias("h")
    operator_touched = or_(h.c.taken_at.is_not(None), h.c.transferred_from.is_not(None))
    hagg = select(
        h.c.conversation_id.label("cid"), func.count().label("handoffs"),
        func.max(case((operator_touched, 1), else_=0)).label("operator"),
        func.max(case((and_(h.c.taken_at.is_not(None), h.c.queue == "senior"), 1), else_=0)).label("senior"),
        func.max(h.c.fault_number).label("fault"),
    ).where(h.c.conversation_id.in_(select(first.c.cid))).group_by(h.c.conversation_id).cte("hagg")

    r, dt, h2 = REPORT.alias("r"), TASK.alias("dt"), HANDOFF.alias("h2")
    bot_took = exists().where(r.c.conversation_id == first.c.cid, r.c.kind.in_(("new", "repeat")))
    # M: escalated to the manager hotline while the caller was at a seat (J4/J6/S1): an
    # escalation on the ticket of one of the contact's handoffs, made after it was queued.
    escalated = exists().select_from(h2.join(dt, dt.c.ticket_id == h2.c.ticket_id)).where(
        h2.c.conversation_id == first.c.cid, dt.c.kind == "escalation", dt.c.created >= h2.c.created)
    operator = func.coalesce(hagg.c.operator, 0)
    fault = func.coalesce(per.c.fault, hagg.c.fault)
    line = LINE.alias("line")
    attrs = select(
        first.c.first_at.label("when"),
        _channel(per.c.channel).label("channel"),
        case((operator == 1, case((bot_took, literal("indirect")), else_=literal("person"))),
             (per.c.last_outcome.in_(SETTLED_BY_BOT), literal("machine")),
             else_=literal("none")).label("handled_by"),
        case((escalated, literal("M")), (func.coalesce(hagg.c.senior, 0) == 1, literal("S")),
             (operator == 1, literal("J")), else_=per.c.last_step).label("settled_at"),
        case((fault.is_(None), literal("none")), (line.c.number.is_(None), literal("unknown")),
             (line.c.big_customer == true(), literal("big")), else_=line.c.customer_type).label("customer_type"),
        case((func.coalesce(hagg.c.handoffs, 0) == 0, literal("contained")),
             else_=literal("handed_off")).label("contained"),
        per.c.last_outcome.label("last_outcome"),
    ).select_from(
        first.join(per, per.c.cid == first.c.cid).outerjoin(hagg, hagg.c.cid == first.c.cid)
        .outerjoin(line, line.c.number == fault)
    ).subquery("attrs")
    return _grouped("contact", lt, attrs)


# ------------------------------------------------------------------ the wait (J1)


def handoff(s: Session, lt: LocalTime) -> Select[Any]:
    """Every handoff queued in the stretch: why, how it ended (answered, abandoned, back
    to the bot, still waiting), its J1 wait bucket and queue; ``v`` sums the seconds waited."""
    h = HANDOFF.alias("h")
    wait_end = func.coalesce(h.c.taken_at, h.c.ended_at)
    wait = seconds_between(lt.dialect, wait_end, h.c.created)
    bucket = case((wait_end.is_(None), literal("waiting")), (wait < 15, literal("0-15")),
                  (wait < 30, literal("15-30")), (wait < 60, literal("30-60")), (wait < 120, literal("60-120")),
                  (wait < 300, literal("120-300")), else_=literal("300+"))
    result = case((h.c.taken_at.is_not(None), literal("answered")), (h.c.state == "done", literal("answered")),
                  (h.c.state == "abandoned", literal("abandoned")), (h.c.state == "returned", literal("returned")),
                  else_=literal("waiting"))
    per = select(
        h.c.created.label("when"), func.substr(h.c.reason, 1, 100).label("reason"), result.label("result"),
        bucket.label("wait_bucket"),
        case((h.c.transferred_from.is_not(None), literal("junior")), else_=h.c.queue).label("queue"),
        func.coalesce(wait, 0.0).label("wait"),
    ).where(h.c.created >= lt.start, h.c.created < lt.end).subquery("per")
    return _grouped("handoff", lt, per, v="wait")


# ------------------------------------------------------------------ reports (T2)


# Tickets that are no caller's report: world-file fixtures, and second dispatches (U5: the
# survey's new ticket for a fault already reported, counted in T4).
NOT_REPORTS = ("world", "second_dispatch")


def _reports(lt: LocalTime) -> Any:
    """Every fault report of the stretch: each ticket made by a caller, an operator or
    another system is a new report (world-file fixtures and second dispatches are not);
    repeat (A6) and supplementary (J5) reports are rows of ``report``."""
    tk, r, t2 = TICKET.alias("tk"), REPORT.alias("r"), TICKET.alias("t2")
    new = select(
        tk.c.creation_date.label("when"), literal("new").label("kind"), tk.c.symptom_category.label("symptom"),
        tk.c.fault_class, tk.c.channel, tk.c.branch, tk.c.fault_number,
    ).where(tk.c.origin.not_in(NOT_REPORTS), tk.c.creation_date >= lt.start, tk.c.creation_date < lt.end)
    more = select(
        r.c.at.label("when"), r.c.kind, func.coalesce(r.c.symptom_category, t2.c.symptom_category).label("symptom"),
        t2.c.fault_class, r.c.channel, t2.c.branch, t2.c.fault_number,
    ).select_from(r.join(t2, t2.c.id == r.c.ticket_id)).where(
        r.c.kind.in_(("repeat", "supplement")), r.c.channel != "world", r.c.at >= lt.start, r.c.at < lt.end)
    return union_all(new, more).subquery("reports")


def rep_kind(s: Session, lt: LocalTime) -> Select[Any]:
    src = _reports(lt)
    per = select(src.c.when, src.c.kind.label("kind"),
                 func.coalesce(src.c.symptom, literal("other")).label("symptom"),
                 func.coalesce(src.c.fault_class, literal("unclassified")).label("fault_class"),
                 _channel(src.c.channel).label("channel")).subquery("per")
    return _grouped("rep_kind", lt, per)


def rep_place(s: Session, lt: LocalTime) -> Select[Any]:
    """By branch and by exchange: the exchange is the longest known prefix of the fault
    number (A4), as the world in force names them."""
    src = _reports(lt)
    lengths = sorted({len(p) for p in s.execute(select(EXCHANGE.c.prefix)).scalars()}, reverse=True)
    joined: Any = src
    prefixes = []
    for n in lengths:
        ex = EXCHANGE.alias(f"ex{n}")
        joined = joined.outerjoin(ex, ex.c.prefix == func.substr(src.c.fault_number, 1, n))
        prefixes.append(ex.c.prefix)
    exchange = func.coalesce(*prefixes, literal("unknown")) if prefixes else literal("unknown")
    per = select(src.c.when, src.c.kind.label("kind"), func.coalesce(src.c.branch, literal("unknown")).label("branch"),
                 exchange.label("exchange")).select_from(joined).subquery("per")
    return _grouped("rep_place", lt, per)


def rep_time(s: Session, lt: LocalTime) -> Select[Any]:
    src = _reports(lt)
    per = select(src.c.when, src.c.kind.label("kind"), lt.hour(src.c.when).label("hour"),
                 lt.weekday(src.c.when).label("weekday")).subquery("per")
    return _grouped("rep_time", lt, per)


# ------------------------------------------------------------------ centres (T4)


def centre(s: Session, lt: LocalTime) -> Select[Any]:
    """The workflow's dispatches, completion receipts (on time or late), returns, chases
    and reopenings, per measurement centre; ``v`` sums the seconds from dispatch to
    receipt. A receipt is on time when it came within the centre's completion hours of
    the dispatch it answers (the last one before it: a reopened ticket's second receipt
    is measured from its second dispatch)."""
    c, c2, tk, mc = CHANGE.alias("c"), CHANGE.alias("c2"), TICKET.alias("tk"), CENTRE_ROW.alias("mc")
    is_receipt = c.c.action == "receipt"
    last_dispatch = (select(func.max(c2.c.at)).where(c2.c.ticket_id == c.c.ticket_id,
                                                      c2.c.action == "approve_dispatch", c2.c.at <= c.c.at)
                     .scalar_subquery())
    dispatched = func.coalesce(last_dispatch, tk.c.dispatched_at)
    took = seconds_between(lt.dialect, c.c.at, dispatched)
    per = select(
        c.c.at.label("when"), func.coalesce(tk.c.centre_id, literal("none")).label("centre"),
        c.c.action.label("action"),
        case((~is_receipt, literal("")),
             (or_(dispatched.is_(None), mc.c.id.is_(None)), literal("no_deadline")),
             (took <= mc.c.completion_deadline_hours * 3600.0, literal("on_time")),
             else_=literal("late")).label("timeliness"),
        case((and_(is_receipt, dispatched.is_not(None)), took), else_=0.0).label("repair_s"),
    ).select_from(c.join(tk, tk.c.id == c.c.ticket_id).outerjoin(mc, mc.c.id == tk.c.centre_id)).where(
        c.c.action.in_(CENTRE_ACTIONS), c.c.at >= lt.start, c.c.at < lt.end).subquery("per")
    return _grouped("centre", lt, per, v="repair_s")


def deadline(s: Session, lt: LocalTime) -> Select[Any]:
    """U1–U2 as the deadline watch recorded them, per centre: warnings (at 80 % of a
    dispatch's deadline), alarms (at the deadline, no receipt) and violations, each dated
    by when it happened; ``v`` sums the violations' lateness in seconds (those still open
    count 0 until their receipt)."""
    w, vi = WATCH.alias("w"), VIOLATION.alias("vi")
    warnings = select(w.c.warned_at.label("when"), w.c.centre_id.label("centre"), literal("warning").label("event"),
                      literal(0.0).label("late")).where(w.c.warned_at >= lt.start, w.c.warned_at < lt.end)
    alarms = select(w.c.alarmed_at.label("when"), w.c.centre_id.label("centre"), literal("alarm").label("event"),
                    literal(0.0).label("late")).where(w.c.alarmed_at >= lt.start, w.c.alarmed_at < lt.end)
    violations = select(vi.c.detected_at.label("when"), vi.c.centre_id.label("centre"),
                        literal("violation").label("event"), func.coalesce(vi.c.late_by_s, 0.0).label("late")
                        ).where(vi.c.detected_at >= lt.start, vi.c.detected_at < lt.end)
    per = union_all(warnings, alarms, violations).subquery("per")
    return _grouped("deadline", lt, per, v="late")


# ------------------------------------------------------------------ surveys (T4, U3–U5)

# A finished survey's outcome, one each (FIGURES.md): the reporter answered (completed, or
# stopped after at least one answer, or said "don't call me again" after answering), refused
# (the do-not-call list, or "don't call me again" before any answer), was unreachable after
# every attempt, or had no number we could call.
SURVEY_OUTCOMES = ("answered", "refused", "unreachable", "no_contact")


def survey(s: Session, lt: LocalTime) -> Select[Any]:
    """U3–U5 per measurement centre (the surveyed ticket's: the centre that repaired):
    surveys falling due (dated by the receipt that opened them), surveys finished (dated
    when they ended) by outcome, final state, result and the two ratings (1–5, as the
    reporter gave them), and second dispatches (dated when made) by why, counted against
    the first ticket's centre."""
    sv, tk, sd, t1 = SURVEY.alias("sv"), TICKET.alias("tk"), SECOND.alias("sd"), TICKET.alias("t1")
    centre_of = func.coalesce(tk.c.centre_id, literal("none"))
    answered_any = or_(sv.c.fixed.is_not(None), sv.c.attitude.is_not(None), sv.c.quality.is_not(None))
    outcome = case(
        (sv.c.state.in_(("completed", "stopped")), literal("answered")),
        (and_(sv.c.state == "opted_out", answered_any), literal("answered")),
        (sv.c.state.in_(("opted_out", "do_not_call")), literal("refused")),
        (sv.c.state == "unreachable", literal("unreachable")),
        else_=literal("no_contact"))

    def rating(column: Any) -> ColumnElement[str]:
        return func.coalesce(cast(column, String), literal(""))

    blank = literal("")
    due = select(sv.c.created.label("when"), centre_of.label("centre"), literal("due").label("event"),
                 blank.label("detail"), blank.label("result"), blank.label("attitude"), blank.label("quality"),
                 ).select_from(sv.outerjoin(tk, tk.c.id == sv.c.ticket_id)).where(
        sv.c.created >= lt.start, sv.c.created < lt.end)
    finished = select(sv.c.finished_at.label("when"), centre_of.label("centre"), outcome.label("event"),
                      sv.c.state.label("detail"), func.coalesce(sv.c.result, blank).label("result"),
                      rating(sv.c.attitude).label("attitude"), rating(sv.c.quality).label("quality"),
                      ).select_from(sv.outerjoin(tk, tk.c.id == sv.c.ticket_id)).where(
        sv.c.state.not_in(("due", "in_progress")), sv.c.finished_at >= lt.start, sv.c.finished_at < lt.end)
    second = select(sd.c.created.label("when"), func.coalesce(t1.c.centre_id, literal("none")).label("centre"),
                    literal("second_dispatch").label("event"), sd.c.why.label("detail"), blank.label("result"),
                    blank.label("attitude"), blank.label("quality"),
                    ).select_from(sd.outerjoin(t1, t1.c.id == sd.c.first_ticket_id)).where(
        sd.c.created >= lt.start, sd.c.created < lt.end)
    per = union_all(due, finished, second).subquery("per")
    return _grouped("survey", lt, per)


CUBES: dict[str, Callable[[Session, LocalTime], Select[Any]]] = {
    "contact": contact, "handoff": handoff, "rep_kind": rep_kind, "rep_place": rep_place,
    "rep_time": rep_time, "centre": centre, "deadline": deadline, "survey": survey,
}
assert set(CUBES) == set(KEYS)


def stretch(s: Session, tz: Any, start: datetime, end: datetime) -> LocalTime:
    return LocalTime(s.get_bind().dialect.name, tz, start, end)

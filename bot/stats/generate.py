"""A seeded year of data for the statistics' benchmark (``python -m bot stats generate
--conversations 1000000 --seed 1``): conversations with their outcomes, tickets, reports,
line tests, handoffs, history and escalations, each resolved ticket's survey (U3–U5) and
the second dispatches it led to, shaped like the service's (most calls settled by the bot,
a quarter handed off, a few abandoned; most reporters satisfied), inserted in bulk.

SQLite: executemany in large transactions; PostgreSQL: COPY. The same seed gives the
same rows on both. Returns the totals it wrote, so a check can compare a report's
figures with what was generated.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Table, text

from bot.sla.models import DeadlineViolation, DeadlineWatch
from bot.store.db import Database
from bot.store.models import (
    ConversationOutcome,
    ExchangeRow,
    FaultClassRow,
    Handoff,
    LineRow,
    LineTest,
    MeasurementCentreRow,
    Report,
    Ticket,
    TicketStatusChange,
)
from bot.store.survey_records import SecondDispatch, Survey

log = structlog.get_logger(__name__)

BRANCHES = ("西湖分公司", "拱墅分公司", "滨江分公司", "余杭分公司", "萧山分公司")
SYMPTOMS = ("no_dial_tone", "noise", "cannot_call_out", "cannot_receive", "broadband_down", "other")
FAULT_CLASSES = ("用户线路故障", "交换设备故障", "宽带故障", "用户终端故障", "其他")
REASONS = ("caller_request", "failure_limit", "repeat_over_limit", "repeat_caller_request", "other_services")
BATCH = 20_000


@dataclass
class Totals:
    conversations: int = 0
    tickets: int = 0
    repeat_reports: int = 0
    handoffs: int = 0
    warnings: int = 0
    violations: int = 0
    by_outcome: Counter[str] = field(default_factory=Counter)
    rows: Counter[str] = field(default_factory=Counter)
    # U3–U5, as FIGURES.md counts them: due, answered, refused, unreachable, no_contact,
    # second_dispatches, attitude_rated / _satisfied, quality_rated / _satisfied (from 4)
    surveys: Counter[str] = field(default_factory=Counter)


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


class _Writer:
    """Buffers rows per table and writes them in bulk (COPY on PostgreSQL)."""

    def __init__(self, db: Database, totals: Totals) -> None:
        self.db, self.totals = db, totals
        self.buffers: dict[str, list[tuple[Any, ...]]] = {}
        self.columns: dict[str, list[str]] = {}

    def add(self, table: Table, row: dict[str, Any]) -> None:
        cols = self.columns.setdefault(table.name, list(row))
        self.buffers.setdefault(table.name, []).append(tuple(row[c] for c in cols))
        if len(self.buffers[table.name]) >= BATCH:
            self.flush()

    def flush(self) -> None:
        # Parents first: tickets before the rows that refer to them.
        for table_name in sorted(self.buffers, key=lambda n: n != "ticket"):
            rows = self.buffers.get(table_name) or []
            if not rows:
                continue
            cols = self.columns[table_name]
            if self.db.is_sqlite:
                with self.db.engine.begin() as conn:
                    conn.exec_driver_sql(
                        f'INSERT INTO "{table_name}" ({", ".join(cols)}) VALUES ({", ".join("?" for _ in cols)})',
                        [tuple(_sqlite(v) for v in r) for r in rows])
            else:
                raw = self.db.engine.raw_connection()
                try:
                    with raw.cursor() as cur, cur.copy(  # type: ignore[attr-defined]
                            f'COPY "{table_name}" ({", ".join(cols)}) FROM STDIN') as copy:
                        for r in rows:
                            copy.write_row([json.dumps(v) if isinstance(v, dict | list) else v for v in r])
                    raw.commit()
                finally:
                    raw.close()
            self.totals.rows[table_name] += len(rows)
            self.buffers[table_name] = []


def _sqlite(value: Any) -> Any:
    """As SQLAlchemy stores it on SQLite: times as UTC text, JSON as text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def centre_hours(branch: str) -> float:
    """The completion deadline of the branch's centre, as :func:`world` makes it."""
    return 24.0 + 12 * (BRANCHES.index(branch) % 3)


def _watch(w: _Writer, totals: Totals, tid: str, centre: str, branch: str, dispatched: datetime,
           took_h: float) -> datetime:
    """U1–U2 as the deadline watch would have recorded this dispatch; returns the receipt's time."""
    hours = centre_hours(branch)
    receipt = dispatched + timedelta(hours=took_h)
    deadline = dispatched + timedelta(hours=hours)
    warned = dispatched + timedelta(hours=0.8 * hours) if took_h > 0.8 * hours else None
    alarmed = deadline if took_h > hours else None
    totals.warnings += warned is not None
    watch_id = totals.rows["deadline_watch"] + len(w.buffers.get("deadline_watch", [])) + 1
    w.add(_table(DeadlineWatch), {
        "id": watch_id, "ticket_id": tid, "dispatch_no": 1, "centre_id": centre, "branch": branch,
        "dispatched_at": dispatched, "allowance_hours": hours, "working_hours_only": False, "deadline_at": deadline,
        "warned_at": warned, "alarmed_at": alarmed, "ended_at": receipt, "end_reason": "receipt_received",
        "created": dispatched})
    if alarmed is not None:
        totals.violations += 1
        w.add(_table(DeadlineViolation), {
            "watch_id": watch_id, "ticket_id": tid, "dispatch_no": 1, "centre_id": centre,
            "centre_name": f"{branch[:2]}测量管理中心", "branch": branch, "deadline_at": deadline,
            "detected_at": deadline, "ended_at": receipt, "late_by_s": (took_h - hours) * 3600})
    return receipt


# How a generated survey ends (U3–U5): (share, state, answers given, refused).
SURVEY_ENDS = ((0.70, "completed"), (0.05, "stopped"), (0.14, "unreachable"), (0.04, "do_not_call"),
               (0.03, "opted_out"), (0.02, "opted_out_answered"), (0.02, "no_contact"))
RATING_WEIGHTS = (2, 3, 8, 37, 50)  # 1 … 5: most reporters are satisfied


def _survey(w: _Writer, totals: Totals, rng: random.Random, tid: str, ticket: dict[str, Any],
            receipt: datetime) -> None:
    """U3: the survey the centre's receipt opened, ended as the bot and the surveyor would
    have left it; a "not fixed" answer or a dissatisfied one found the telecom side's
    fault makes a second dispatch (U5)."""
    roll, end = rng.random(), "completed"
    for share, name in SURVEY_ENDS:
        if roll < share:
            end = name
            break
        roll -= share
    state = "opted_out" if end == "opted_out_answered" else end
    channel = "webchat" if ticket["channel"] == "webchat" else "phone"
    row: dict[str, Any] = {"ticket_id": tid, "channel": channel, "number": ticket["contact_number"],
                           "language": "zh", "state": state, "created": receipt, "attempts_made": 1,
                           "fixed": None, "attitude": None, "quality": None, "result": None, "cause": None,
                           "second_ticket_id": None, "finished_at": receipt + timedelta(hours=rng.uniform(0.5, 30))}
    totals.surveys["due"] += 1
    if end in ("completed", "stopped", "opted_out_answered"):
        totals.surveys["answered"] += 1
        row["fixed"] = rng.random() > 0.05
        if row["fixed"] and end == "completed":
            row["attitude"], row["quality"] = (rng.choices(range(1, 6), RATING_WEIGHTS)[0] for _ in range(2))
        elif row["fixed"]:  # stopped or opted out after the first rating
            row["attitude"] = rng.choices(range(1, 6), RATING_WEIGHTS)[0]
        for name in ("attitude", "quality"):
            if row[name] is not None:
                totals.surveys[f"{name}_rated"] += 1
                totals.surveys[f"{name}_satisfied"] += row[name] >= 4
        ratings = [r for r in (row["attitude"], row["quality"]) if r is not None]
        row["result"] = ("not_fixed" if not row["fixed"] else "dissatisfied" if any(r < 4 for r in ratings)
                         else "satisfied" if len(ratings) == 2 else None)
    elif end in ("do_not_call", "opted_out"):
        totals.surveys["refused"] += 1
        row["attempts_made"] = 0 if end == "do_not_call" else 1
        if end == "do_not_call":
            row["finished_at"] = receipt
    elif end == "unreachable":
        totals.surveys["unreachable"] += 1
        row["attempts_made"], row["finished_at"] = 3, receipt + timedelta(hours=rng.uniform(4, 30))
    else:
        totals.surveys["no_contact"] += 1
        row.update(attempts_made=0, number=None, finished_at=receipt)
    second = row["result"] == "not_fixed" or (row["result"] == "dissatisfied" and rng.random() < 0.3)
    if second:
        row["cause"], row["second_ticket_id"] = "telecom", f"{tid}-2"
    w.add(_table(Survey), row)
    if second:
        made = row["finished_at"] + (timedelta(0) if row["result"] == "not_fixed"
                                     else timedelta(hours=rng.uniform(1, 20)))
        w.add(_table(Ticket), {**ticket, "id": f"{tid}-2", "channel": "survey", "origin": "second_dispatch",
                               "status": "acknowledged", "sub_step": "awaiting_review", "creation_date": made,
                               "last_update": made, "status_change_date": made, "centre_id": None,
                               "dispatched_at": None, "version": 1, "conversation_id": None})
        w.add(_table(SecondDispatch), {"first_ticket_id": tid, "ticket_id": f"{tid}-2",
                                       "why": "not_fixed" if row["result"] == "not_fixed" else "telecom",
                                       "created_by": "gen", "created": made})
        totals.surveys["second_dispatches"] += 1


def world(db: Database, rng: random.Random, lines_per_exchange: int = 400) -> list[tuple[str, str, bool]]:
    """Exchanges, lines and centres; returns the lines (number, branch, big)."""
    lines: list[tuple[str, str, bool]] = []
    with db.session() as s:
        for i, branch in enumerate(BRANCHES):
            s.add(MeasurementCentreRow(id=f"MC-{i}", name=f"{branch[:2]}测量管理中心", branch=branch,
                                       completion_deadline_hours=centre_hours(branch)))
        for name in FAULT_CLASSES:
            s.add(FaultClassRow(name=name))
        for e in range(40):
            branch = BRANCHES[e % len(BRANCHES)]
            prefix = f"0571{8700 + e:04d}"
            s.add(ExchangeRow(prefix=prefix, name=f"{branch[:2]}{e:02d}局", branch=branch))
            for n in range(lines_per_exchange):
                number = f"{prefix}{n:04d}"
                big = rng.random() < 0.03
                kind = "business" if big or rng.random() < 0.25 else "residential"
                s.add(LineRow(number=number, owner="用户", customer_type=kind, big_customer=big, branch=branch))
                lines.append((number, branch, big))
    return lines


def generate(db: Database, *, conversations: int, seed: int, start: datetime,
             days: int = 365, lines_per_exchange: int = 400) -> Totals:
    """Write ``conversations`` conversations spread over ``days`` days from ``start`` (UTC)."""
    rng = random.Random(seed)
    survey_rng = random.Random(seed * 1_000_003 + 11)  # its own: the other rows stay as a seed made them
    totals = Totals()
    lines = world(db, rng, lines_per_exchange)
    w = _Writer(db, totals)
    o_t, t_t, r_t, lt_t, h_t, c_t = (_table(m) for m in (ConversationOutcome, Ticket, Report, LineTest,
                                                         Handoff, TicketStatusChange))
    open_tickets: list[str] = []
    handoff_id = 0
    span_s = days * 86400
    # Times in order: a sorted list of offsets keeps the repeat reports after their tickets.
    offsets = sorted(rng.random() * span_s for _ in range(conversations))
    for i, offset in enumerate(offsets):
        at = start + timedelta(seconds=offset)
        cid = f"g{seed}-{i}"
        number, branch, big = rng.choice(lines)
        channel = "voice" if rng.random() < 0.7 else "webchat"
        roll = rng.random()
        totals.conversations += 1

        # The two helpers below are called within this iteration only (B023 does not apply).
        def outcome(kind: str, step: str, when: datetime, reason: str | None = None,
                    fault: str | None = number, tid: str | None = None) -> None:
            w.add(o_t, {"conversation_id": cid, "channel": channel, "language": "zh", "outcome": kind, "step": step,  # noqa: B023
                        "reason": reason, "ticket_id": tid, "fault_number": fault, "at": when})
            totals.by_outcome[kind] += 1

        def handoff(reason: str, when: datetime, state: str, wait: float, tid: str | None) -> None:
            nonlocal handoff_id
            handoff_id += 1
            taken = when + timedelta(seconds=wait) if state == "done" else None
            ended = when + timedelta(seconds=wait + (240 if taken else 0))
            w.add(h_t, {"id": handoff_id, "conversation_id": cid, "channel": channel, "language": "zh",  # noqa: B023
                        "reason": reason, "fault_number": number, "ticket_id": tid, "line_test": None,  # noqa: B023
                        "transcript": [], "queue": "senior" if big else "junior", "state": state, "created": when,  # noqa: B023
                        "taken_by": "jun" if taken else None, "taken_at": taken, "ended_at": ended,
                        "end_reason": None, "return_offers": int(wait // 15), "transferred_from": None})
            totals.handoffs += 1

        if roll < 0.45:  # A10: a new report, tested, accepted
            tid = f"G{seed}-{i}"
            symptom = rng.choice(SYMPTOMS)
            klass = rng.choice(FAULT_CLASSES)
            centre = f"MC-{BRANCHES.index(branch)}"
            dispatched = at + timedelta(minutes=rng.randint(10, 240))
            ticket = {"id": tid, "name": symptom, "description": symptom, "severity": "Major", "priority": "Medium",
                        "ticket_type": "fault", "channel": channel, "fault_number": number, "contact_number": number,
                        "symptom_category": symptom, "symptom_text": None, "branch": branch, "language": "zh",
                        "status": "resolved", "status_change_reason": None, "status_change_date": at,
                        "creation_date": at, "last_update": at, "expected_resolution_date":
                        dispatched + timedelta(hours=24), "resolution_date": None, "origin": "conversation",
                        "world_fault_id": None, "conversation_id": cid, "sub_step": "receipt_received", "version": 3,
                      "fault_class": klass, "centre_id": centre, "dispatched_at": dispatched, "chase_count": 0}
            w.add(t_t, ticket)
            w.add(r_t, {"ticket_id": tid, "kind": "new", "at": at, "channel": channel, "language": "zh",
                        "conversation_id": cid, "contact_number": number, "symptom_category": symptom,
                        "symptom_text": None})
            w.add(lt_t, {"ticket_id": tid, "fault_number": number, "test_id": f"t{i}", "result": "open_circuit",
                         "summary_zh": "", "summary_en": "", "measurements": {}, "started_at": at,
                         "finished_at": at})
            receipt = _watch(w, totals, tid, centre, branch, dispatched, rng.uniform(2, 40))
            for action, when, step in (("report", at, "awaiting_review"),
                                       ("approve_dispatch", dispatched, "dispatched"),
                                       ("receipt", receipt, "receipt_received")):
                w.add(c_t, {"ticket_id": tid, "from_status": None, "to_status": "inProgress", "reason": None,
                            "author": "gen", "at": when, "action": action, "from_sub_step": None,
                            "to_sub_step": step})
            _survey(w, totals, survey_rng, tid, ticket, receipt)
            outcome("accepted", "A10", at + timedelta(seconds=90), tid=tid)
            totals.tickets += 1
            open_tickets.append(tid)
            if len(open_tickets) > 2000:
                open_tickets.pop(0)
        elif roll < 0.60 and open_tickets:  # A6–A7: a repeat report on a recent ticket
            tid = rng.choice(open_tickets)
            w.add(r_t, {"ticket_id": tid, "kind": "repeat", "at": at, "channel": channel, "language": "zh",
                        "conversation_id": cid, "contact_number": None, "symptom_category": None,
                        "symptom_text": None})
            totals.repeat_reports += 1
            if rng.random() < 0.3:
                outcome("handed_off", "A7", at + timedelta(seconds=30), "repeat_caller_request", tid=tid)
                handoff("repeat_caller_request", at + timedelta(seconds=30), "done", rng.expovariate(1 / 25), tid)
            else:
                outcome("repeat_informed", "A7", at + timedelta(seconds=40), tid=tid)
        elif roll < 0.72:  # A5: repaired or engineering works
            outcome(rng.choice(("informed_repaired", "informed_engineering")), "A5", at + timedelta(seconds=30))
        elif roll < 0.90:  # A1–A3: to a person
            reason = rng.choice(REASONS[:2])
            outcome("handed_off", "A1" if reason == "caller_request" else "A2", at, reason, fault=None)
            wait = rng.expovariate(1 / 30)
            if rng.random() < 0.85:
                handoff(reason, at, "done", wait, None)
            else:
                handoff(reason, at, "abandoned", wait, None)
                outcome("abandoned", "J1", at + timedelta(seconds=wait), "hung up", fault=None)
        elif roll < 0.97:  # abandoned in the bot
            outcome("abandoned", rng.choice(("A2", "A8", "A9", "A11")), at + timedelta(seconds=20))
        else:
            outcome("no_input", "A2", at + timedelta(seconds=60), "failure_limit", fault=None)
        if i % 100_000 == 99_999:
            log.info("stats.generate_progress", conversations=i + 1)
    w.flush()
    if not db.is_sqlite:
        with db.engine.begin() as conn:
            for table in ("handoff", "conversation_outcome", "report", "line_test", "ticket_status_change",
                          "deadline_watch", "deadline_violation"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"COALESCE((SELECT MAX(id) FROM {table}), 1))"))
            conn.execute(text("ANALYZE"))
    else:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return totals


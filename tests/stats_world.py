"""Loads a statistics fixture (tests/fixtures/stats/*.yml) into a store: every row the
figures read, written as the bot and the desk would have written it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session

from bot.sla.models import DeadlineViolation, DeadlineWatch
from bot.store.db import Database
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

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "stats"
STEP_AFTER = {"approve_dispatch": "dispatched", "chase": "dispatched", "receipt": "receipt_received",
              "reopen": "awaiting_review", "return_to_review": "returned"}


def when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def read(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def load(db: Database, data: dict[str, Any]) -> None:
    def write(s: Session) -> None:
        for e in data.get("exchanges", []):
            s.add(ExchangeRow(prefix=e["prefix"], name=e["name"], branch=e["branch"]))
        for line in data.get("lines", []):
            s.add(LineRow(number=line["number"], owner="某某", customer_type=line["customer_type"],
                          big_customer=bool(line.get("big_customer", False))))
        for c in data.get("centres", []):
            s.add(MeasurementCentreRow(id=c["id"], name=c["name"], branch=c["branch"],
                                       completion_deadline_hours=c["hours"]))
        s.flush()
        for t in data.get("tickets", []):
            at = when(t["at"])
            s.add(Ticket(id=t["id"], name=t["symptom"], description=t["symptom"], severity="Major",
                         channel=t["channel"], fault_number=t.get("fault"), symptom_category=t["symptom"],
                         branch=t.get("branch"), origin=t["origin"], conversation_id=t.get("conversation"),
                         fault_class=t.get("fault_class"), centre_id=t.get("centre"), creation_date=at,
                         last_update=at, status_change_date=at))
            s.flush()
            for action, moment in t.get("history", []):
                s.add(TicketStatusChange(ticket_id=t["id"], to_status="inProgress", author="someone",
                                         at=when(moment), action=action, to_sub_step=STEP_AFTER.get(action)))
        for r in data.get("reports", []):
            s.add(Report(ticket_id=r["ticket"], kind=r["kind"], at=when(r["at"]), channel=r["channel"],
                         conversation_id=r.get("conversation")))
        for cid, channel, outcome, step, at, fault in data.get("outcomes", []):
            s.add(ConversationOutcome(conversation_id=cid, channel=channel, language="zh", outcome=outcome,
                                      step=step, at=when(at), fault_number=fault))
        for h in data.get("handoffs", []):
            s.add(Handoff(id=h["id"], conversation_id=h["conversation"], channel=h["channel"], language="zh",
                          reason=h["reason"], queue=h["queue"], state=h["state"], created=when(h["created"]),
                          taken_by=h.get("taken_by"), taken_at=when(h.get("taken_at")),
                          ended_at=when(h.get("ended_at")), transferred_from=h.get("transferred_from"),
                          ticket_id=h.get("ticket"), fault_number=h.get("fault")))
        for w in data.get("deadline_watch", []):
            s.add(DeadlineWatch(ticket_id=w["ticket"], dispatch_no=w["dispatch_no"], centre_id=w["centre"],
                                dispatched_at=when(w["dispatched_at"]), allowance_hours=w["hours"],
                                warned_at=when(w.get("warned_at")), alarmed_at=when(w.get("alarmed_at"))))
        for v in data.get("violations", []):
            s.add(DeadlineViolation(watch_id=0, ticket_id=v["ticket"], dispatch_no=v["dispatch_no"],
                                    centre_id=v["centre"], centre_name=v["centre"], deadline_at=when(v["deadline"]),
                                    detected_at=when(v["detected"]), late_by_s=v.get("late_by_s")))
        s.flush()
        for v in data.get("surveys", []):  # U3–U5, as the survey left them
            s.add(Survey(ticket_id=v["ticket"], channel=v.get("channel", "phone"), number=v.get("number"),
                         state=v["state"], created=when(v["created"]), finished_at=when(v.get("finished")),
                         attempts_made=v.get("attempts", 0), fixed=v.get("fixed"), attitude=v.get("attitude"),
                         quality=v.get("quality"), result=v.get("result"), cause=v.get("cause"),
                         second_ticket_id=v.get("second_ticket")))
        for d in data.get("second_dispatches", []):
            s.add(SecondDispatch(first_ticket_id=d["first"], ticket_id=d["ticket"], why=d["why"],
                                 created_by=d.get("by", "survey"), created=when(d["created"])))
        for e in data.get("escalations", []):
            s.add(DeskTask(kind="escalation", role="manager", ticket_id=e["ticket"], reason="overdue",
                           created_by=e["by"], created=when(e["created"])))

    db.call(write)
    if db.engine.dialect.name == "postgresql":  # explicit ids: move the sequence past them
        from sqlalchemy import text

        with db.engine.begin() as conn:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('handoff', 'id'), "
                              "(SELECT MAX(id) FROM handoff))"))

"""J1 in the store (bot/store/handoffs.py): a caller waiting for a seat, the offer to
go back to the bot, leaving while waiting, and the live chat once taken. On SQLite and
PostgreSQL (the ``db`` fixture). Category: unit (a real database, no HTTP)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from bot.store import handoffs, service
from bot.store.db import Database
from bot.store.models import ConversationOutcome, DeskUser, Handoff, HandoffMessage, utcnow


def queue(db: Database, conversation_id: str = "c1", channel: str = "webchat") -> int:
    return db.call(service.queue_handoff, service.HandoffData(
        conversation_id=conversation_id, channel=channel, language="zh", reason="caller_request",
        fault_number="057187650001", ticket_id="TT-00000001")).handoff_id


@pytest.fixture
def operators(db: Database) -> Database:
    def add(s: Session) -> None:
        s.add(DeskUser(username="jun", display_name="王小明", role="junior", password_hash="x", extension="1001"))
        s.add(DeskUser(username="jun2", display_name="李四", role="junior", password_hash="x"))

    db.call(add)
    return db


def test_status_while_waiting_gives_place_and_wait(db: Database) -> None:
    first = queue(db, "c1")
    second = queue(db, "c2")
    later = utcnow() + timedelta(seconds=20)
    st = db.call(handoffs.status, second, now=later)
    assert (st.state, st.queue, st.position, st.operator) == ("queued", "junior", 2, None)
    assert st.waited_s >= 19.5
    assert db.call(handoffs.status_for_conversation, "c1").position == 1  # type: ignore[union-attr]
    assert db.call(handoffs.status_for_conversation, "nobody") is None
    db.call(handoffs.return_to_bot, first)
    assert db.call(handoffs.status, second).position == 1  # the one ahead left the queue


def test_offers_are_counted_only_while_waiting(operators: Database) -> None:
    db = operators
    hid = queue(db)
    assert db.call(handoffs.count_offer, hid) == 1
    assert db.call(handoffs.count_offer, hid) == 2
    db.call(service.take_handoff, hid, "jun")
    with pytest.raises(service.Conflict) as e:
        db.call(handoffs.count_offer, hid)
    assert e.value.code == "already_taken"
    assert db.call(handoffs.status, hid).return_offers == 2


def test_return_to_bot_ends_the_wait(db: Database) -> None:
    hid = queue(db)
    row = db.call(handoffs.return_to_bot, hid)
    assert row.state == "returned" and row.ended_at is not None and "automated" in (row.end_reason or "")
    with pytest.raises(service.Conflict):
        db.call(handoffs.return_to_bot, hid)
    with pytest.raises(service.Conflict):  # nobody can take a caller who went back to the bot
        db.call(service.take_handoff, hid, "jun")


def test_return_to_bot_after_the_operator_took_it_is_refused(operators: Database) -> None:
    db = operators
    hid = queue(db)
    db.call(service.take_handoff, hid, "jun")
    with pytest.raises(service.Conflict) as e:
        db.call(handoffs.return_to_bot, hid)
    assert e.value.code == "already_taken"
    st = db.call(handoffs.status, hid)
    assert (st.state, st.operator, st.operator_extension) == ("taken", "王小明", "1001")


def _race(db: Database, hid: int) -> dict[str, str]:
    """The caller presses "back to the bot" as an operator clicks Take."""
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def attempt(name: str, fn: object, *args: object) -> None:
        barrier.wait()
        try:
            db.call(fn, hid, *args)  # type: ignore[arg-type]
            results[name] = "won"
        except service.Conflict:
            results[name] = "lost"

    threads = [threading.Thread(target=attempt, args=("back", handoffs.return_to_bot)),
               threading.Thread(target=attempt, args=("take", service.take_handoff, "jun"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_return_and_take_at_the_same_moment_end_one_way(operators: Database) -> None:
    db = operators
    for i in range(6):
        hid = queue(db, f"race{i}")
        results = _race(db, hid)
        assert sorted(results.values()) == ["lost", "won"]
        state = db.call(handoffs.status, hid).state
        assert state == ("returned" if results["back"] == "won" else "taken")


def test_abandon_records_the_wait_and_an_outcome_at_j1(db: Database) -> None:
    hid = queue(db, "gone", channel="voice")
    later = utcnow() + timedelta(seconds=42)
    waited = db.call(handoffs.abandon, hid, "hangup", now=later)
    assert 41 <= waited <= 43

    def rows(s: Session) -> tuple[Handoff, list[ConversationOutcome]]:
        h = s.get(Handoff, hid)
        assert h is not None
        return h, list(s.exec(select(ConversationOutcome).where(ConversationOutcome.conversation_id == "gone")))

    h, outcomes = db.call(rows)
    assert h.state == "abandoned" and h.ended_at is not None
    assert "waited 42 s" in (h.end_reason or "")
    assert [(o.outcome, o.step, o.channel) for o in outcomes] == [("abandoned", "J1", "voice")]
    assert "waited 42 s" in (outcomes[0].reason or "")
    assert outcomes[0].fault_number == "057187650001"
    with pytest.raises(service.Conflict):
        db.call(handoffs.abandon, hid, "hangup")


def test_live_chat_messages_in_order_since_an_id(operators: Database) -> None:
    db = operators
    hid = queue(db)
    with pytest.raises(service.Conflict) as e:  # nobody is there yet
        db.call(handoffs.add_message, hid, "caller", "hello?")
    assert e.value.code == "not_taken"
    db.call(service.take_handoff, hid, "jun")
    m1 = db.call(handoffs.add_message, hid, "operator", "您好，我是王小明", author="jun")
    m2 = db.call(handoffs.add_message, hid, "caller", "  <script>x</script>  ")
    assert m1["name"] == "王小明" and m2["name"] is None
    assert m2["text"] == "<script>x</script>"  # stored as typed (trimmed); pages render it inert
    st = db.call(handoffs.status, hid, since_id=0)
    assert [(m["sender"], m["text"]) for m in st.messages] == [("operator", "您好，我是王小明"),
                                                               ("caller", "<script>x</script>")]
    assert [m["id"] for m in db.call(handoffs.status, hid, since_id=m1["id"]).messages] == [m2["id"]]
    assert db.call(handoffs.status, hid).messages == []  # no since: no messages


@pytest.mark.parametrize("text,code", [("", "empty_message"), ("   \n", "empty_message"),
                                       ("x" * (handoffs.MAX_MESSAGE + 1), "message_too_long")])
def test_bad_messages_are_refused(operators: Database, text: str, code: str) -> None:
    db = operators
    hid = queue(db)
    db.call(service.take_handoff, hid, "jun")
    with pytest.raises(service.ServiceError) as e:
        db.call(handoffs.add_message, hid, "caller", text)
    assert e.value.code == code and e.value.status == 400
    assert db.call(handoffs.add_message, hid, "caller", "x" * handoffs.MAX_MESSAGE)["text"]


def test_only_the_taker_or_an_admin_speaks_and_finishes(operators: Database) -> None:
    db = operators
    hid = queue(db)
    db.call(service.take_handoff, hid, "jun")
    with pytest.raises(service.Conflict) as e:
        db.call(handoffs.add_message, hid, "operator", "hi", author="jun2")
    assert e.value.code == "not_taker"
    with pytest.raises(service.Conflict):
        db.call(handoffs.finish, hid, "jun2")
    assert db.call(handoffs.add_message, hid, "operator", "admin here", author="adm", admin=True)["text"]
    row = db.call(handoffs.finish, hid, "jun")
    assert row.state == "done" and row.ended_at is not None
    with pytest.raises(service.Conflict) as e:
        db.call(handoffs.add_message, hid, "caller", "still there?")
    assert e.value.code == "handoff_ended"
    with pytest.raises(service.Conflict):
        db.call(handoffs.finish, hid, "jun")
    senders = [m["sender"] for m in db.call(handoffs.status, hid, since_id=0).messages]
    assert senders == ["operator", "system"]


def test_caller_leaving_abandons_a_wait_and_ends_a_live_chat(operators: Database) -> None:
    db = operators
    waiting = queue(db, "w")
    assert db.call(handoffs.caller_left, waiting, "chat closed") == "abandoned"
    live = queue(db, "l")
    db.call(service.take_handoff, live, "jun")
    assert db.call(handoffs.caller_left, live, "chat closed") == "done"
    assert db.call(handoffs.caller_left, live, "chat closed") == ""

    def texts(s: Session) -> list[str]:
        return [m.text for m in s.exec(select(HandoffMessage).where(HandoffMessage.handoff_id == live))]

    assert db.call(texts) == ["The caller left the chat."]


def test_unknown_handoff_is_not_found(db: Database) -> None:
    with pytest.raises(service.NotFound):
        db.call(handoffs.status, 999)
    with pytest.raises(service.NotFound):
        db.call(handoffs.return_to_bot, 999)

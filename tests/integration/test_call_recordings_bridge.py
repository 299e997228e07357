"""Q2 on the phone: a caller bridged to an operator's phone is recorded by FreeSWITCH
(voice/call/call_recording.py) against the FreeSWITCH double, which records as
``record_session`` does (RECORD_START, the bridged time only, the WAV at the path it was
given, RECORD_STOP): the caller hears the designers' notice first, the bot sets the
recording variables and runs ``record_session`` before ``bridge`` and
``stop_record_session`` after it, and the file is stored for the handoff. A requeue to
a senior gives a second recording; a bridge nobody answered, a file FreeSWITCH never
wrote or a missing notice leave nothing stored and the call goes on."""

from __future__ import annotations

import asyncio
import uuid
import wave
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bot.chat.service import ChatService, ConversationState
from bot.settings import REPO_ROOT
from bot.store import recordings, service
from bot.store.db import Database
from bot.store.models import DeskUser
from tests.fakes.freeswitch import CallScript, is_sendmsg
from tests.fakes.fs_media import FakePhoneCall
from tests.fakes.voice_doubles import ScriptedDialogue, ToneSpeech, until
from tests.integration.test_call_hold import HANDOFF_SAID, EndingStoreLine, Hold, to_senior
from tests.integration.test_call_session import catalogue
from tests.ports import random_block
from voice.call import CallDeps, CallSession, CallSettings
from voice.call.call_recording import RECORDING_NOTICE_PROMPT, CallRecordingSettings
from voice.esl import EslCallConnection, EslOutboundServer
from voice.media import PortPool, UnicastConfig
from voice.recording import RecordingStore
from voice.service import StoreHandoffLine, designer_texts, static_prompt_texts

NOTICE = designer_texts(REPO_ROOT / "nlu", RECORDING_NOTICE_PROMPT)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'recorded.db'}")
    db.upgrade()
    db.call(lambda s: s.add_all([
        DeskUser(username="jun", display_name="王小明", role="junior", password_hash="x", extension="2001"),
        DeskUser(username="sen", display_name="赵高级", role="senior", password_hash="x", extension="3001"),
    ]))
    yield db
    db.dispose()


def wav_files(folder: str) -> list[Path]:
    return sorted(Path(folder).glob("*.wav"))


class RecordingStoreLine(EndingStoreLine):
    """The product's store line, reading recordings from ``folder``."""

    def __init__(self, db: Database, folder: Path) -> None:
        super().__init__(db)
        StoreHandoffLine.__init__(self, db, folder)


@pytest.fixture
async def make_call(store: Database, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    made: list[Hold] = []
    session = aiohttp.ClientSession()
    base = random_block(42000, 47000, 1000)

    async def make(*, notice: dict[str, str] | None = None, bot_reads: Path | None = None,
                   min_seconds: int = 1) -> Hold:
        call_id = str(uuid.uuid4())
        hid = store.call(service.queue_handoff, service.HandoffData(
            conversation_id=call_id, channel="voice", language="zh", reason="caller_request",
            fault_number="057187650001")).handoff_id
        handoff = {"handoff": {"handoff_id": hid, "reason": "caller_request", "fault_number": "057187650001",
                               "conversation_id": call_id}}
        dialogue = ScriptedDialogue([("/start", [("utter_handoff", HANDOFF_SAID), ("", "", handoff)])])
        speech = ToneSpeech(ms=300)

        async def record_abandoned(cid: str, state: ConversationState, channel: str, reason: str) -> None:
            raise AssertionError("not abandoned in the dialogue")

        chat = ChatService(dialogue, catalogue(), channel="voice",  # type: ignore[arg-type]
                           action_health_url="http://127.0.0.1:9/health", session=session,
                           record_abandoned=record_abandoned)
        b = base + 100 * len(made)
        fs_dir = tmp_path / "fs-recordings"
        deps = CallDeps(
            chat=chat, speech_out=speech, media_ports=PortPool(b, b + 49), fs_ports=PortPool(b + 50, b + 99),
            recordings=RecordingStore(tmp_path / "recordings"),
            settings=CallSettings(
                handoff_offer_s=30, handoff_poll_s=0.1, bridge_answer_timeout_s=5,
                unicast=UnicastConfig(dead_after_s=0.3),
                call_recording=CallRecordingSettings(enabled=True, fs_dir=str(fs_dir), min_seconds=min_seconds,
                                                     notice=NOTICE if notice is None else notice)),
            handoffs=RecordingStoreLine(store, bot_reads or fs_dir),
        )

        async def on_call(conn: EslCallConnection) -> None:
            s = CallSession(conn, deps)
            h.sessions.append(s)
            h.outcomes.append(await s.run())

        server = EslOutboundServer(on_call, "127.0.0.1", 0)
        await server.start()
        h = Hold(store, dialogue, speech, server, hid, call_id)
        made.append(h)
        return h

    yield make
    for h in made:
        for c in h.calls:
            await c.close()
        await h.server.close()
    await session.close()


async def taken_and_bridged(h: Hold, operator: str = "jun", script: CallScript | None = None) -> FakePhoneCall:
    call = await h.dial(script)
    await until(lambda: HANDOFF_SAID in h.speech.texts, 5, "the handoff prompt")
    h.db.call(service.take_handoff, h.handoff_id, operator)
    await until(lambda: call.b_leg is not None, 5, "the operator's phone answering")
    return call


def apps(call: FakePhoneCall) -> list[tuple[str, str]]:
    return [(p.header("execute-app-name") or "", p.header("execute-app-arg") or "")
            for p in call.commands if is_sendmsg("execute")(p)]


def stored_rows(h: Hold) -> list[Any]:
    return h.db.call(recordings.list_recordings, handoff_id=h.handoff_id)


def test_the_notice_is_the_designers_text_and_is_cached() -> None:
    responses = yaml.safe_load((REPO_ROOT / "nlu" / "domain" / "responses.yml").read_text(encoding="utf-8"))
    variants = responses["responses"][RECORDING_NOTICE_PROMPT]
    assert NOTICE["zh"] == next(v["text"] for v in variants if not v.get("condition"))
    assert NOTICE["en"] == next(v["text"] for v in variants if v.get("condition"))
    texts = static_prompt_texts(REPO_ROOT / "nlu")
    assert ("zh", NOTICE["zh"]) in texts and ("en", NOTICE["en"]) in texts


async def test_an_answered_bridge_is_recorded_in_stereo_and_stored(make_call: Any) -> None:
    h = await make_call()
    call = await taken_and_bridged(h)
    await asyncio.sleep(1.5)  # the caller and the operator talk
    await call.operator_hangs_up()
    await until(lambda: bool(h.outcomes), 5, "the call's end")
    await until(lambda: bool(stored_rows(h)), 5, "the recording stored")

    name = f"{h.handoff_id}-{call.uuid}-1.wav"
    fs_path = str(Path(h.sessions[0].deps.settings.call_recording.fs_dir) / name)
    sent = apps(call)
    # Told first, then recorded, then bridged; stopped when the bridge app returned.
    said_at = next(t for t, text in h.speech.spoken if text == NOTICE["zh"])
    record_at = next(p.at for p in call.commands if is_sendmsg("execute", "record_session")(p))
    assert said_at < record_at
    order = [app for app, _ in sent if app in ("record_session", "bridge", "stop_record_session", "hangup")]
    assert order == ["record_session", "bridge", "stop_record_session"]
    assert ("record_session", fs_path) in sent and ("stop_record_session", fs_path) in sent
    assert (call.variables["RECORD_STEREO"], call.variables["record_sample_rate"]) == ("true", "8000")
    assert call.variables["RECORD_BRIDGE_REQ"] == "true" and call.variables["RECORD_MIN_SEC"] == "1"
    assert "RECORD_STEREO" not in call.exported  # the caller's channel records, not the operator's

    with wave.open(fs_path, "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 2, 2)
        seconds = w.getnframes() / w.getframerate()
    # The bridged time (the double's CHANNEL_BRIDGE to CHANNEL_UNBRIDGE), not the ringing or the notice.
    assert call.b_leg_answered_at is not None and call.unbridged_at is not None
    assert seconds == pytest.approx(call.unbridged_at - call.b_leg_answered_at, abs=0.05) and seconds >= 1.5
    [row] = stored_rows(h)
    assert (row.file_name, row.fs_path, row.operator, row.extension) == (name, fs_path, "jun", "2001")
    assert (row.sample_rate, row.channels) == (8000, 2) and row.duration_s == pytest.approx(seconds, abs=0.01)
    assert row.conversation_id == call.uuid and row.ended_at >= row.started_at
    assert h.outcomes == ["handoff"] and h.state() == "done"


async def test_a_requeue_to_a_senior_is_a_second_recording_with_its_operator(make_call: Any) -> None:
    h = await make_call()
    call = await taken_and_bridged(h)
    await asyncio.sleep(1.2)  # RECORD_MIN_SEC=1: a shorter part would be discarded by FreeSWITCH
    h.db.call(to_senior, h.handoff_id, "jun")
    await until(lambda: call.unbridged_at is not None, 5, "the junior's leg ended")
    await until(lambda: len(stored_rows(h)) == 1, 5, "the junior's part stored")
    h.db.call(service.take_handoff, h.handoff_id, "sen")
    await until(lambda: len(call.bridges) == 2 and call.b_leg is not None, 5, "the senior's phone answering")
    await asyncio.sleep(1.2)
    await call.caller_hangs_up()  # the hang-up closes the second recording (RECORD_STOP)
    await until(lambda: len(stored_rows(h)) == 2, 5, "the senior's part stored")
    senior, junior = stored_rows(h)  # newest first
    assert (junior.operator, senior.operator) == ("jun", "sen")
    assert junior.file_name.endswith("-1.wav") and senior.file_name.endswith("-2.wav")
    assert senior.duration_s >= 1.0 and junior.duration_s >= 1.0
    assert h.speech.texts.count(NOTICE["zh"]) == 1  # told once per call
    assert [app for app, _ in apps(call)].count("record_session") == 2


async def test_a_bridge_nobody_answered_leaves_nothing(make_call: Any) -> None:
    h = await make_call()
    call = await h.dial(CallScript(bridge="USER_NOT_REGISTERED"))
    await until(lambda: HANDOFF_SAID in h.speech.texts, 5)
    h.db.call(service.take_handoff, h.handoff_id, "jun")
    await until(lambda: bool(h.outcomes), 5)
    assert call.transferred_to == "handoff XML default" and h.outcomes == ["handoff"]
    sent = [app for app, _ in apps(call)]
    # Stopped before the queue extension takes the call: its calls are not ours to record.
    assert sent.index("stop_record_session") < sent.index("transfer")
    assert call.recorded == [] and stored_rows(h) == []
    assert wav_files(h.sessions[0].deps.settings.call_recording.fs_dir) == []


async def test_a_file_the_bot_cannot_find_is_not_attached_and_the_call_goes_on(
        make_call: Any, tmp_path: Path) -> None:
    h = await make_call(bot_reads=tmp_path / "elsewhere")  # FreeSWITCH's folder is not shared with the bot
    call = await taken_and_bridged(h)
    await asyncio.sleep(1.2)
    await call.operator_hangs_up()
    await until(lambda: bool(h.outcomes), 5)
    assert h.outcomes == ["handoff"] and h.state() == "done" and call.recorded  # FreeSWITCH wrote it
    await asyncio.sleep(0.3)
    assert stored_rows(h) == []


async def test_without_the_notice_the_call_is_bridged_unrecorded(make_call: Any) -> None:
    h = await make_call(notice={})
    call = await taken_and_bridged(h)
    await call.operator_hangs_up()
    await until(lambda: bool(h.outcomes), 5)
    assert "record_session" not in [app for app, _ in apps(call)] and call.bridges == ["user/2001"]
    assert stored_rows(h) == []


async def test_a_bridge_shorter_than_the_minimum_is_discarded_by_freeswitch(make_call: Any) -> None:
    h = await make_call(min_seconds=30)
    call = await taken_and_bridged(h)
    await call.operator_hangs_up()  # long before RECORD_MIN_SEC
    await until(lambda: bool(h.outcomes), 5)
    await asyncio.sleep(0.3)
    assert call.recorded == [] and stored_rows(h) == [] and h.state() == "done"

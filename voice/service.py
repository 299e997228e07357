"""The phone channel as the bot runs it: the ESL outbound server FreeSWITCH dials per
call, the speech engines it finds, and one ``CallSession`` per call.

What runs depends on what is installed (``python -m bot models fetch``): a Vosk model
for a language → speech input in that language, else keypad only (and the prompts
never ask the caller to say anything); a Piper voice → Piper, else espeak-ng.
"""

from __future__ import annotations

import asyncio
import contextlib
import wave
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import yaml

from bot.chat.prompts import Language, PromptCatalogue
from bot.chat.service import ChatService
from bot.settings import Settings
from bot.store import handoffs, recordings
from bot.store import service as store_service
from bot.store.db import Database
from bot.store.errors import Conflict
from voice import metrics
from voice.asr import AsrModel, CallRecognizer, asr_executor, grammar_for
from voice.call import (
    APOLOGY,
    HOLD_OFFER,
    CallDeps,
    CallSession,
    CallSettings,
    HoldStatus,
    RecogniserFactory,
    SpeechIn,
    SpeechOut,
)
from voice.call.call_recording import RECORDING_NOTICE_PROMPT, CallRecordingSettings, RecordedBridge
from voice.call.outbound import TEST_CALL_MESSAGE, TEST_CALL_THANKS, OutboundCallSession
from voice.call.survey import APOLOGY_SURVEY, SurveyCallSession
from voice.esl import EslCallConnection, EslError, EslOutboundServer
from voice.esl.protocol import ChannelData
from voice.media import PortPool, UnicastConfig
from voice.outbound import OutboundCalls
from voice.recording import RecordingStore
from voice.vad import EndpointConfig

log = structlog.get_logger(__name__)
LANGUAGES: tuple[Language, ...] = ("zh", "en")


class VoskSpeechIn:
    """A call's Vosk recogniser behind the session's small interface: the prompt's
    expectation picks the grammar (digits, yes/no, a menu) or free decoding."""

    def __init__(self, model: AsrModel, language: Language, sample_rate: int, executor: ThreadPoolExecutor) -> None:
        self._model = model
        self._language = language
        self._rec = CallRecognizer(model, sample_rate, executor)

    async def begin(self, expect: Mapping[str, Any]) -> None:
        await self._rec.begin(grammar_for(expect, self._language, self._model.vocabulary()))

    async def feed(self, pcm: bytes) -> str | None:
        return await self._rec.feed(pcm)

    async def end(self) -> str:
        return (await self._rec.end()).text

    async def close(self) -> None:
        await self._rec.close()


@dataclass
class SpeechEngines:
    speech_out: SpeechOut
    asr_models: dict[Language, AsrModel] = field(default_factory=dict)
    executor: ThreadPoolExecutor | None = None
    closers: list[Any] = field(default_factory=list)  # things with async stop()
    recogniser_factory: RecogniserFactory | None = None  # instead of the Vosk models (tests, bench)

    def recognisers(self) -> RecogniserFactory | None:
        if self.recogniser_factory is not None:
            return self.recogniser_factory
        if not self.asr_models:
            return None
        models, executor = self.asr_models, self.executor
        assert executor is not None

        def make(language: Language, rate: int) -> SpeechIn | None:
            model = models.get(language)
            return VoskSpeechIn(model, language, rate, executor) if model else None

        return make


class StoreHandoffLine:
    """J1 for calls on hold, from the store (bot/store/handoffs.py); Q2: the recordings
    of their bridges (bot/store/recordings.py), read from ``recordings_dir``."""

    def __init__(self, db: Database, recordings_dir: Path | None = None) -> None:
        self._db = db
        self._recordings_dir = recordings_dir

    async def status(self, handoff_id: int) -> HoldStatus:
        st = await self._db.run(handoffs.status, handoff_id)
        return HoldStatus(st.state, st.operator_extension, st.operator_username)

    async def offered(self, handoff_id: int) -> None:
        with contextlib.suppress(Conflict):
            await self._db.run(handoffs.count_offer, handoff_id)

    async def return_to_bot(self, handoff_id: int) -> bool:
        try:
            await self._db.run(handoffs.return_to_bot, handoff_id)
        except Conflict:
            return False
        return True

    async def abandon(self, handoff_id: int, reason: str) -> float | None:
        try:
            return await self._db.run(handoffs.abandon, handoff_id, reason)
        except Conflict:
            return None

    async def operator_finished(self, handoff_id: int, operator: str | None) -> None:
        """The operator hung up the bridged call: the handoff is done (by the system when
        the operator is unknown)."""
        with contextlib.suppress(Conflict):
            await self._db.run(handoffs.finish, handoff_id, operator or "", admin=operator is None)

    async def caller_left(self, handoff_id: int, reason: str) -> None:
        await self._db.run(handoffs.caller_left, handoff_id, reason, on_phone=True)

    async def recorded(self, bridge: RecordedBridge) -> None:
        """Store the file FreeSWITCH wrote for an answered bridge; no file (FreeSWITCH
        could not write it, or discarded it) or an empty one: nothing is attached."""
        if self._recordings_dir is None:
            return
        path = self._recordings_dir / bridge.file_name
        try:
            facts = await asyncio.to_thread(recordings.wav_facts, path)
        except (OSError, wave.Error) as exc:
            log.error("call_recording.unreadable", handoff_id=bridge.handoff_id, file=bridge.file_name,
                      error=str(exc))
            return
        if facts.seconds <= 0:
            await self.discard(bridge.file_name)
            return
        await self._db.run(recordings.add_recording, recordings.RecordingData(
            handoff_id=bridge.handoff_id, file_name=bridge.file_name, fs_path=bridge.fs_path,
            conversation_id=bridge.conversation_id, started_at=bridge.started_at, ended_at=bridge.ended_at,
            facts=facts, operator=bridge.operator, extension=bridge.extension))

    async def discard(self, file_name: str) -> None:
        """A bridge nobody answered: FreeSWITCH normally deleted the short file itself."""
        if self._recordings_dir is not None:
            await asyncio.to_thread((self._recordings_dir / file_name).unlink, missing_ok=True)


def designer_texts(nlu_dir: Path, response: str) -> dict[Language, str]:
    """A response's text per language from the designers' ``domain/responses.yml`` (the
    Mandarin default and the ``language: en`` variant), for what the phone says itself."""
    data = yaml.safe_load((nlu_dir / "domain" / "responses.yml").read_text(encoding="utf-8")) or {}
    out: dict[Language, str] = {}
    for v in (data.get("responses") or {}).get(response) or []:
        text = v.get("text")
        if not isinstance(text, str) or v.get("channel") not in (None, "voice"):
            continue
        cond = v.get("condition") or []
        lang: Language = "en" if any(c.get("name") == "language" and c.get("value") == "en" for c in cond) else "zh"
        out.setdefault(lang, text)
    return out


def static_prompt_texts(nlu_dir: Path) -> list[tuple[Language, str]]:
    """Every response text without slots, per language, and the phone's own texts (the
    apology, the J1 offer on hold, the test call's): synthesised once at start-up."""
    data = yaml.safe_load((nlu_dir / "domain" / "responses.yml").read_text(encoding="utf-8")) or {}
    out: list[tuple[Language, str]] = []
    for variants in (data.get("responses") or {}).values():
        for v in variants or []:
            text = v.get("text")
            if not isinstance(text, str) or "{" in text:
                continue
            cond = v.get("condition") or []
            lang: Language = "en" if any(c.get("name") == "language" and c.get("value") == "en" for c in cond) else "zh"
            out.append((lang, text))
    for own in (APOLOGY, HOLD_OFFER, TEST_CALL_MESSAGE, TEST_CALL_THANKS, APOLOGY_SURVEY):
        out += [(lang, text) for lang, text in own.items()]
    # The invitations to speak that calls with speech recognition add after prompts.
    catalogue = PromptCatalogue.load(nlu_dir / "prompts.yml")
    hints = {(lang, hint) for name in catalogue.names() for lang in LANGUAGES
             if (hint := catalogue.expectation(name, lang)["speech_hint"])}
    return out + sorted(hints)


async def load_speech_engines(settings: Settings) -> SpeechEngines:
    """The TTS voices and ASR models this machine has (never raises for a missing model)."""
    from bot.models_fetch import find_model
    from voice.tts import build_speaker

    def pick(explicit: Path | None, kind: str, language: Language) -> Path | None:
        if explicit is not None:
            return explicit if explicit.exists() else None
        return find_model(settings.speech_models_dir, kind, language)

    piper: dict[Language, Path | None] = {lang: _piper_onnx(pick(
        settings.piper_voice_zh if lang == "zh" else settings.piper_voice_en, "piper", lang)) for lang in LANGUAGES}
    tts = build_speaker(piper, settings.tts_cache_dir, log_dir=settings.tts_cache_dir.parent / "log")
    await tts.start()
    engines = SpeechEngines(speech_out=tts.speaker, closers=[tts])
    if not settings.keypad_only:
        for lang in LANGUAGES:
            path = pick(settings.vosk_model_zh if lang == "zh" else settings.vosk_model_en, "vosk", lang)
            if path is None:
                continue
            try:
                engines.asr_models[lang] = await AsrModel.load(path, lang)
            except Exception as exc:  # noqa: BLE001 - a broken model means keypad only, not no phone
                log.error("voice.asr_model_failed", language=lang, error=str(exc))
    if engines.asr_models:
        engines.executor = asr_executor()
    log.info("voice.engines", piper=[lang for lang, p in piper.items() if p],
             speech_input=sorted(engines.asr_models) or "keypad only")
    return engines


def _piper_onnx(path: Path | None) -> Path | None:
    """A voice folder (as ``models fetch`` unpacks it) or the .onnx itself."""
    if path is None or path.suffix == ".onnx":
        return path
    return next(iter(sorted(path.glob("*.onnx"))), None)


class VoiceService:
    def __init__(
        self,
        settings: Settings,
        chat: ChatService,
        engines: SpeechEngines,
        on_call_end: Callable[[CallSession], None] | None = None,
        db: Database | None = None,
        outbound: OutboundCalls | None = None,
    ) -> None:
        self.settings = settings
        self.outbound = outbound  # the calls the bot places come back here when answered
        self.engines = engines
        self._on_call_end = on_call_end
        # J1: calls on hold ask the store how their handoff stands (the app's database,
        # or one of our own on the same URL).
        self._own_db = db is None
        self.db = db if db is not None else Database.from_settings(settings)
        unicast = UnicastConfig(local_ip=settings.media_ip, dead_after_s=settings.media_dead_after_s)
        self.deps = CallDeps(
            chat=chat,
            speech_out=engines.speech_out,
            media_ports=PortPool(settings.media_port_min, settings.media_port_max),
            fs_ports=PortPool(settings.fs_media_port_min, settings.fs_media_port_max),
            recordings=RecordingStore(settings.recordings_dir),
            recognisers=engines.recognisers(),
            settings=CallSettings(
                fs_media_ip=settings.fs_media_ip,
                handoff_extension=settings.handoff_extension,
                handoff_context=settings.handoff_context,
                handoff_offer_s=settings.handoff_offer_seconds,
                handoff_poll_s=settings.handoff_poll_seconds,
                recording_silence_ms=settings.recording_silence_ms,
                end_silence_ms_by_kind={"choice": settings.vad_end_silence_choice_ms,
                                        "digits": settings.vad_end_silence_digits_ms},
                endpoint=EndpointConfig(
                    aggressiveness=settings.vad_aggressiveness,
                    min_speech_ms=settings.vad_min_speech_ms,
                    end_silence_ms=settings.vad_end_silence_ms,
                ),
                unicast=unicast,
                call_recording=CallRecordingSettings(
                    enabled=settings.call_recording_enabled, fs_dir=settings.fs_recordings_path,
                    notice=designer_texts(settings.nlu_dir, RECORDING_NOTICE_PROMPT)),
            ),
            handoffs=StoreHandoffLine(self.db, settings.call_recordings_dir),
        )
        self.server = EslOutboundServer(self.on_call, settings.esl_host, settings.esl_port, linger_s=settings.esl_linger_s,
                                        on_gone_before_start=self.on_gone_before_start)
        self._prewarm: asyncio.Task[None] | None = None

    async def on_gone_before_start(self, channel: ChannelData | None) -> None:
        """The caller hung up while the call was being answered: the dialogue never
        started, but the attempt is an outcome (abandoned at A1) the statistics count.
        Gone even before FreeSWITCH said which channel it was: only the metric knows."""
        metrics.CALLS.labels("gone_before_answer").inc()
        if channel is None or channel.headers.get("variable_hotline_purpose"):
            return  # unknown, or a call the bot placed: its outbound record says how it ended
        await self.db.run(store_service.record_outcome, store_service.OutcomeData(
            conversation_id=channel.uuid, channel="voice", language="zh", outcome="abandoned", step="A1",
            reason="hung_up_before_answer"))

    async def on_call(self, conn: EslCallConnection) -> None:
        # A call the bot placed names its purpose (originate's channel variables):
        # its own session, not the conversation for callers who dialled in.
        if conn.channel is not None and conn.channel.variable("hotline_purpose"):
            await self._placed_call(conn)
            return
        session = CallSession(conn, self.deps)
        try:
            await session.run()
        finally:
            if self._on_call_end is not None:
                self._on_call_end(session)

    async def _placed_call(self, conn: EslCallConnection) -> None:
        channel = conn.channel
        assert channel is not None
        found = (self.outbound.line_for(channel.variable("hotline_outbound_id"), channel.uuid)
                 if self.outbound is not None else None)
        if found is None:
            # Placed by a run of the bot that is gone, or not by the bot at all.
            log.warning("voice.outbound_call_unknown", purpose=channel.variable("hotline_purpose"),
                        call_id=channel.uuid)
            with contextlib.suppress(EslError):
                await conn.hangup()
            return
        live, line = found
        if live.purpose == "survey" and live.ref_id and live.ref_id.isdigit():
            await SurveyCallSession(conn, self.deps, line, int(live.ref_id), language=live.language).run()
            return
        await OutboundCallSession(conn, self.deps, line, language=live.language).run()

    async def start(self, prewarm: bool = True) -> None:
        if self.settings.call_recording_enabled:
            # Q2: FreeSWITCH writes here (when on this host) and the bot reads from here.
            await asyncio.to_thread(self.settings.call_recordings_dir.mkdir, parents=True, exist_ok=True)
        await self.server.start()
        if prewarm:
            self._prewarm = asyncio.create_task(self._prewarm_prompts())
        log.info("voice.listening", host=self.settings.esl_host, port=self.server.port)

    async def _prewarm_prompts(self) -> None:
        prewarm = getattr(self.engines.speech_out, "prewarm", None)
        if prewarm is None:
            return
        try:
            stats = await prewarm(static_prompt_texts(self.settings.nlu_dir), 8000)
            log.info("voice.prompts_cached", stats=str(stats))
        except Exception as exc:  # noqa: BLE001 - calls still work, just slower first time
            log.error("voice.prewarm_failed", error=str(exc))

    async def stop(self) -> None:
        if self._prewarm is not None:
            self._prewarm.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prewarm
        await self.server.close()
        for closer in self.engines.closers:
            with contextlib.suppress(Exception):
                await closer.stop()
        if self.engines.executor is not None:
            self.engines.executor.shutdown(wait=False, cancel_futures=True)
        if self._own_db:
            self.db.dispose()

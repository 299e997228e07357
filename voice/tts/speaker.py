"""Speaker: text in, L16le audio at the call's rate out, sentence by sentence.

``speak`` turns the text into its spoken form, cuts it into sentences, and streams
each one's audio: from the prompt cache when it is there, otherwise synthesised by the
language's voice (falling back to espeak-ng if that fails), resampled to the call rate
and cached. One producer task makes sentences in order, at most ``lookahead`` ahead of
what the consumer has taken, so sentence 2 is being made while sentence 1 plays and
time to first audio is that of the first sentence alone. Sentences are made one at a
time because Piper's work is CPU-bound (2 cores here): running them in parallel would
only slow the first one down.

Barge-in: the consumer stops iterating and closes the generator (``aclose``, or the
task iterating it is cancelled, as ``UnicastEndpoint.play_stream`` does): the producer
is cancelled and awaited, and an in-flight espeak-ng process is killed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass

import structlog

from bot.chat.prompts import Language
from voice.media.resample import resample_pcm
from voice.tts.base import Synthesizer, TtsError
from voice.tts.cache import PromptCache, cache_key
from voice.tts.text import split_sentences, spoken_form

log = structlog.get_logger(__name__)

_END = object()


@dataclass(slots=True)
class PrewarmStats:
    texts: int = 0
    pieces: int = 0  # distinct sentences
    cached: int = 0  # already in the cache (now also in memory)
    synthesized: int = 0
    failed: int = 0
    seconds: float = 0.0


@dataclass(slots=True)
class SpeakerCounters:
    pieces: int = 0
    cache_hits: int = 0
    synthesized: int = 0
    fallbacks: int = 0  # pieces spoken by the fallback voice
    failures: int = 0  # pieces no voice could make


@dataclass(slots=True)
class _Made:
    pcm: bytes
    key: str | None = None  # set when the audio still has to be written to disk


async def _reap(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it, without swallowing a cancel of our own task."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise


class Speaker:
    def __init__(
        self,
        voices: Mapping[Language, Synthesizer],
        cache: PromptCache,
        fallback: Mapping[Language, Synthesizer] | None = None,
        *,
        lookahead: int = 2,
        chunk_ms: int = 100,
        primary_timeout_s: float | None = 15.0,
        fallback_timeout_s: float | None = 15.0,
        retry_primary_after_s: float = 5.0,
    ) -> None:
        if lookahead < 1:
            raise ValueError("lookahead must be >= 1")
        self.voices = dict(voices)
        self.cache = cache
        self.fallback = {lang: fb for lang, fb in (fallback or {}).items() if fb is not voices.get(lang)}
        self.lookahead = lookahead
        self.chunk_ms = chunk_ms
        self.primary_timeout_s = primary_timeout_s
        self.fallback_timeout_s = fallback_timeout_s
        self.retry_primary_after_s = retry_primary_after_s
        self.counters = SpeakerCounters()
        # After a primary voice fails, go straight to the fallback for a while instead of
        # paying a timeout per sentence; warn once per outage, not per sentence.
        self._primary_down_until: dict[Language, float] = {}

    # -- public ---------------------------------------------------------------------

    def pieces(self, text: str, language: Language) -> list[str]:
        """The sentences ``speak`` would synthesise (spoken form, split)."""
        return split_sentences(spoken_form(text, language), language)

    def is_cached(self, text: str, language: Language, rate: int) -> bool:
        voice = self._voice(language)
        pieces = self.pieces(text, language)
        return bool(pieces) and all(self.cache.contains(voice.voice_id, rate, p) for p in pieces)

    async def prewarm(self, texts: Iterable[tuple[Language, str]], rate: int) -> PrewarmStats:
        """Synthesise every piece of ``texts`` once with the primary voice (skipping what
        is cached, and loading that into memory). Failures are counted, not raised: the
        call will then synthesise (or fall back) on the fly."""
        started = time.monotonic()
        stats = PrewarmStats()
        seen: set[tuple[str, str]] = set()
        for language, text in texts:
            stats.texts += 1
            voice = self._voice(language)
            for piece in self.pieces(text, language):
                if (voice.voice_id, piece) in seen:
                    continue
                seen.add((voice.voice_id, piece))
                stats.pieces += 1
                if await self.cache.get(voice.voice_id, rate, piece) is not None:
                    stats.cached += 1
                    continue
                try:
                    native = await self._synth(voice, piece, self.primary_timeout_s)
                except TtsError as e:
                    stats.failed += 1
                    log.warning("tts.prewarm_failed", voice=voice.voice_id, chars=len(piece),
                                key=cache_key(voice.voice_id, rate, piece)[:16], error=str(e)[:200])
                    continue
                await self.cache.put(voice.voice_id, rate, piece, self._resample(native, voice, rate))
                stats.synthesized += 1
        stats.seconds = time.monotonic() - started
        log.info("tts.prewarmed", rate=rate, texts=stats.texts, pieces=stats.pieces,
                 cached=stats.cached, synthesized=stats.synthesized, failed=stats.failed,
                 seconds=round(stats.seconds, 2))
        return stats

    async def speak(self, text: str, language: Language, rate: int) -> AsyncGenerator[bytes, None]:
        """L16le chunks of ``chunk_ms`` at ``rate``. Raises ``TtsError`` (after the audio
        of the sentences before it) when no voice can make a sentence. An async
        generator: a consumer that stops early should ``aclose()`` it (cancelling the
        consuming task does the same)."""
        voice = self._voice(language)  # unknown language: fail before any work
        pieces = self.pieces(text, language)
        if not pieces:
            return
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize=self.lookahead)
        producer = asyncio.create_task(self._produce(pieces, language, voice, rate, queue),
                                       name="tts-speak-producer")
        chunk_bytes = max(2, rate * 2 * self.chunk_ms // 1000 // 2 * 2)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, bytes)
                for i in range(0, len(item), chunk_bytes):
                    yield item[i : i + chunk_bytes]
        finally:
            if not producer.done():
                await _reap(producer)

    async def aclose(self) -> None:
        """Close the voices' HTTP sessions (those that have one)."""
        for synth in {id(s): s for s in [*self.voices.values(), *self.fallback.values()]}.values():
            close = getattr(synth, "aclose", None)
            if close is not None:
                await close()

    # -- internals ------------------------------------------------------------------

    def _voice(self, language: Language) -> Synthesizer:
        try:
            return self.voices[language]
        except KeyError:
            raise TtsError(f"no voice for language {language!r}") from None

    async def _produce(
        self,
        pieces: list[str],
        language: Language,
        voice: Synthesizer,
        rate: int,
        queue: asyncio.Queue[object],
    ) -> None:
        try:
            for piece in pieces:
                made = await self._make(piece, language, voice, rate)
                await queue.put(made.pcm)
                if made.key is not None:
                    # After handing the audio over, so the disk write never delays it.
                    await self.cache.persist(made.key, rate, made.pcm)
        except Exception as e:  # TtsError, or a bug: either way the consumer must not hang
            await queue.put(e if isinstance(e, TtsError) else TtsError(f"{type(e).__name__}: {e}"))
            if not isinstance(e, TtsError):
                log.exception("tts.producer_failed")
            return
        await queue.put(_END)

    async def _make(self, piece: str, language: Language, voice: Synthesizer, rate: int) -> _Made:
        self.counters.pieces += 1
        cached = await self.cache.get(voice.voice_id, rate, piece)
        if cached is not None:
            self.counters.cache_hits += 1
            return _Made(cached)
        fallback = self.fallback.get(language)
        if fallback is None or not self._primary_is_down(language):
            try:
                native = await self._synth(voice, piece, self.primary_timeout_s)
            except TtsError as e:
                if fallback is None:
                    self.counters.failures += 1
                    raise
                self._primary_failed(language, voice, fallback, e)
            else:
                self._primary_ok(language, voice)
                return self._store(voice, piece, rate, native)
        assert fallback is not None
        self.counters.fallbacks += 1
        cached = await self.cache.get(fallback.voice_id, rate, piece)
        if cached is not None:
            return _Made(cached)
        try:
            native = await self._synth(fallback, piece, self.fallback_timeout_s)
        except TtsError:
            self.counters.failures += 1
            raise
        return self._store(fallback, piece, rate, native)

    async def _synth(self, synth: Synthesizer, piece: str, timeout_s: float | None) -> bytes:
        """One synthesis; any failure of the engine (its own errors, a timeout, a bug
        that raises something else) becomes TtsError so the caller can fall back."""
        try:
            async with asyncio.timeout(timeout_s):
                pcm = await synth.synthesize(piece)
        except TtsError:
            raise
        except TimeoutError as e:
            raise TtsError(f"{synth.voice_id} timed out after {timeout_s} s") from e
        except Exception as e:
            raise TtsError(f"{synth.voice_id} failed: {type(e).__name__}: {e}") from e
        if not pcm:
            raise TtsError(f"{synth.voice_id} produced no audio")
        return pcm

    def _resample(self, native: bytes, synth: Synthesizer, rate: int) -> bytes:
        # Whole sentence at once: soxr does 3 s of audio in < 1 ms (voice/media/resample.py).
        return resample_pcm(native, synth.sample_rate, rate)

    def _store(self, synth: Synthesizer, piece: str, rate: int, native: bytes) -> _Made:
        self.counters.synthesized += 1
        pcm = self._resample(native, synth, rate)
        key = cache_key(synth.voice_id, rate, piece)
        self.cache.remember(key, pcm)
        return _Made(pcm, key)

    def _primary_is_down(self, language: Language) -> bool:
        until = self._primary_down_until.get(language)
        return until is not None and time.monotonic() < until

    def _primary_failed(self, language: Language, voice: Synthesizer, fallback: Synthesizer,
                        error: TtsError) -> None:
        was_down = language in self._primary_down_until
        self._primary_down_until[language] = time.monotonic() + self.retry_primary_after_s
        if not was_down:
            log.warning("tts.fallback", language=language, voice=voice.voice_id,
                        fallback=fallback.voice_id, error=str(error)[:300],
                        retry_after_s=self.retry_primary_after_s)
        else:
            log.debug("tts.primary_still_failing", language=language, voice=voice.voice_id,
                      error=str(error)[:300])

    def _primary_ok(self, language: Language, voice: Synthesizer) -> None:
        if self._primary_down_until.pop(language, None) is not None:
            log.info("tts.primary_recovered", language=language, voice=voice.voice_id)

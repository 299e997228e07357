"""Speaker with scripted fake voices: order, cache, resampling, pipelining, fallback,
cancellation (barge-in), prewarm. Category: unit (no engine, tmp_path cache)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from voice.tts.base import Synthesizer, TtsError
from voice.tts.cache import PromptCache
from voice.tts.speaker import Speaker
from voice.tts.text import split_sentences, spoken_form


class FakeVoice:
    """Each sentence → a distinct, recognisable PCM: its index in ``calls`` as the
    sample value, ``samples_per_char`` samples per character, at ``sample_rate``."""

    def __init__(
        self,
        voice_id: str = "fake:a",
        sample_rate: int = 8000,
        *,
        samples_per_char: int = 80,
        delay_s: float = 0.0,
        fail: bool | set[str] = False,
        hang: bool = False,
    ) -> None:
        self.voice_id = voice_id
        self.sample_rate = sample_rate
        self.samples_per_char = samples_per_char
        self.delay_s = delay_s
        self.fail = fail
        self.hang = hang
        self.calls: list[str] = []
        self.active = 0
        self.max_active = 0
        self.cancelled = 0
        self.called = asyncio.Event()

    def pcm_for(self, text: str, value: int) -> bytes:
        return value.to_bytes(2, "little", signed=True) * (self.samples_per_char * len(text))

    async def synthesize(self, text: str) -> bytes:
        self.calls.append(text)
        self.called.set()
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.hang:
                await asyncio.Event().wait()
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self.fail is True or (isinstance(self.fail, set) and text in self.fail):
                raise TtsError(f"{self.voice_id} broken")
            return self.pcm_for(text, len(self.calls))
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.active -= 1


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


def other_tasks() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def eventually(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


TEXT_EN = "Hello there. Please enter your number. Thank you."
PIECES_EN = ["Hello there.", "Please enter your number.", "Thank you."]


def make(tmp_path: Path, voice: Synthesizer, fallback: Synthesizer | None = None, **kw: float) -> Speaker:
    return Speaker({"en": voice, "zh": voice}, PromptCache(tmp_path),
                   {"en": fallback, "zh": fallback} if fallback else None, **kw)  # type: ignore[arg-type]


def test_fake_is_a_synthesizer() -> None:
    assert isinstance(FakeVoice(), Synthesizer)


async def test_sentences_in_order_at_the_call_rate(tmp_path: Path) -> None:
    voice = FakeVoice()
    speaker = make(tmp_path, voice)
    assert speaker.pieces(TEXT_EN, "en") == PIECES_EN
    audio = await collect(speaker.speak(TEXT_EN, "en", 8000))
    assert voice.calls == PIECES_EN
    expected = b"".join(voice.pcm_for(p, i + 1) for i, p in enumerate(PIECES_EN))
    assert audio == expected


async def test_chunks_are_chunk_ms_long(tmp_path: Path) -> None:
    speaker = make(tmp_path, FakeVoice(), chunk_ms=20)
    chunks = [c async for c in speaker.speak("Hello there, how are you today?", "en", 8000)]
    assert all(len(c) == 320 for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= 320


async def test_spoken_form_is_what_gets_synthesised(tmp_path: Path) -> None:
    voice = FakeVoice()
    speaker = make(tmp_path, voice)
    await collect(speaker.speak("请拨打0571 8765 4321，按#结束。", "zh", 8000))
    assert voice.calls == split_sentences(spoken_form("请拨打0571 8765 4321，按#结束。", "zh"), "zh")
    assert "零五七幺，八七六五，四三二幺" in "".join(voice.calls)


async def test_resampled_to_the_call_rate(tmp_path: Path) -> None:
    voice = FakeVoice(sample_rate=16000, samples_per_char=160)
    speaker = make(tmp_path, voice)
    audio = await collect(speaker.speak("Hello there.", "en", 8000))
    native = 160 * len("Hello there.")
    assert abs(len(audio) // 2 - native // 2) <= 2


async def test_second_time_from_cache_without_synthesis(tmp_path: Path) -> None:
    voice = FakeVoice()
    speaker = make(tmp_path, voice)
    first = await collect(speaker.speak(TEXT_EN, "en", 8000))
    assert speaker.is_cached(TEXT_EN, "en", 8000)
    assert not speaker.is_cached(TEXT_EN, "en", 16000)
    second = await collect(speaker.speak(TEXT_EN, "en", 8000))
    assert second == first and len(voice.calls) == 3
    # A new process (empty memory) finds the files.
    other = make(tmp_path, voice)
    assert other.is_cached(TEXT_EN, "en", 8000)
    assert await collect(other.speak(TEXT_EN, "en", 8000)) == first
    assert len(voice.calls) == 3
    assert other.cache.counters.disk_hits == 3


async def test_pipelining_second_sentence_requested_before_first_is_consumed(tmp_path: Path) -> None:
    voice = FakeVoice(delay_s=0.01)
    speaker = make(tmp_path, voice)
    stream = speaker.speak(TEXT_EN, "en", 8000)
    first = await anext(stream)
    assert voice.calls == PIECES_EN[:1]
    # The consumer takes nothing more; the producer moves on by itself.
    await eventually(lambda: len(voice.calls) >= 2)
    assert voice.calls[1] == PIECES_EN[1]
    assert voice.max_active == 1  # one at a time: sentence 1 never competes for CPU
    rest = await collect(stream)
    assert first + rest == b"".join(voice.pcm_for(p, i + 1) for i, p in enumerate(PIECES_EN))


async def test_lookahead_is_bounded(tmp_path: Path) -> None:
    voice = FakeVoice()
    speaker = make(tmp_path, voice, lookahead=1, chunk_ms=1000)
    text = " ".join(f"Sentence number {w}." for w in ("one", "two", "three", "four", "five", "six"))
    stream = speaker.speak(text, "en", 8000)
    await anext(stream)
    await asyncio.sleep(0.05)
    # Taken: 1; queued: 1 (lookahead); being handed over: 1. Never the whole text.
    assert len(voice.calls) <= 3
    await stream.aclose()


async def test_cancellation_by_aclose_leaves_no_task(tmp_path: Path) -> None:
    voice = FakeVoice(delay_s=0.2)
    speaker = make(tmp_path, voice)
    before = other_tasks()
    stream = speaker.speak(TEXT_EN, "en", 8000)
    await anext(stream)
    await eventually(lambda: voice.active == 1)  # sentence 2 is being synthesised
    await stream.aclose()  # barge-in
    await settle()
    assert other_tasks() == before
    assert voice.cancelled == 1 and voice.active == 0
    assert len(voice.calls) == 2


async def test_cancelling_the_consumer_task_leaves_no_task(tmp_path: Path) -> None:
    """As UnicastEndpoint.play_stream does: the task iterating the stream is cancelled
    while it waits for the next sentence."""
    voice = FakeVoice(delay_s=0.2)
    speaker = make(tmp_path, voice)
    before = other_tasks()
    got: list[bytes] = []

    async def consume() -> None:
        async for chunk in speaker.speak(TEXT_EN, "en", 8000):
            got.append(chunk)

    task = asyncio.create_task(consume())
    await eventually(lambda: bool(got))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await settle()
    assert other_tasks() == before
    assert voice.active == 0


async def test_break_out_of_loop_with_aclosing_leaves_no_task(tmp_path: Path) -> None:
    voice = FakeVoice(delay_s=0.05)
    speaker = make(tmp_path, voice, chunk_ms=10)
    before = other_tasks()
    async with contextlib.aclosing(speaker.speak(TEXT_EN, "en", 8000)) as stream:
        async for _chunk in stream:
            break
    await settle()
    assert other_tasks() == before


async def test_fallback_on_error_logs_once(tmp_path: Path) -> None:
    primary = FakeVoice("fake:primary", fail=True)
    backup = FakeVoice("fake:backup", sample_rate=16000)
    speaker = make(tmp_path, primary, backup, retry_primary_after_s=0)
    with capture_logs() as logs:
        audio = await collect(speaker.speak(TEXT_EN, "en", 8000))
        await collect(speaker.speak("Another one. And more.", "en", 8000))
    assert backup.calls == [*PIECES_EN, "Another one.", "And more."]
    assert audio  # spoken by the fallback, resampled
    assert [e["event"] for e in logs].count("tts.fallback") == 1
    assert speaker.counters.fallbacks == 5
    # Fallback audio is cached under the fallback's voice id, never the primary's.
    assert not speaker.is_cached(TEXT_EN, "en", 8000)
    assert speaker.cache.contains("fake:backup", 8000, PIECES_EN[0])


async def test_primary_skipped_while_down_then_retried(tmp_path: Path) -> None:
    primary = FakeVoice("fake:primary", fail={"First one."})
    backup = FakeVoice("fake:backup")
    speaker = make(tmp_path, primary, backup, retry_primary_after_s=60)
    await collect(speaker.speak("First one. Second one.", "en", 8000))
    # The primary failed once: the rest of the outage goes straight to the fallback.
    assert primary.calls == ["First one."]
    assert backup.calls == ["First one.", "Second one."]
    speaker.retry_primary_after_s = 0
    speaker._primary_down_until["en"] = 0.0
    with capture_logs() as logs:
        await collect(speaker.speak("Third one.", "en", 8000))
    assert primary.calls[-1] == "Third one."
    assert "tts.primary_recovered" in [e["event"] for e in logs]


async def test_fallback_on_timeout(tmp_path: Path) -> None:
    primary = FakeVoice("fake:primary", hang=True)
    backup = FakeVoice("fake:backup")
    speaker = make(tmp_path, primary, backup, primary_timeout_s=0.05)
    audio = await collect(speaker.speak("Hello there.", "en", 8000))
    assert audio == backup.pcm_for("Hello there.", 1)
    assert primary.cancelled == 1 and primary.active == 0


async def test_unexpected_exception_in_a_voice_falls_back(tmp_path: Path) -> None:
    class Buggy(FakeVoice):
        async def synthesize(self, text: str) -> bytes:
            raise RuntimeError("oops")

    backup = FakeVoice("fake:backup")
    speaker = make(tmp_path, Buggy("fake:buggy"), backup)
    assert await collect(speaker.speak("Hello there.", "en", 8000))
    assert backup.calls == ["Hello there."]


async def test_no_fallback_raises_after_the_audio_before(tmp_path: Path) -> None:
    voice = FakeVoice(fail={PIECES_EN[1]})
    speaker = make(tmp_path, voice)
    got: list[bytes] = []
    with pytest.raises(TtsError, match="broken"):
        async for chunk in speaker.speak(TEXT_EN, "en", 8000):
            got.append(chunk)
    assert b"".join(got) == voice.pcm_for(PIECES_EN[0], 1)
    assert speaker.counters.failures == 1


async def test_both_voices_failing_raises(tmp_path: Path) -> None:
    speaker = make(tmp_path, FakeVoice("fake:a", fail=True), FakeVoice("fake:b", fail=True))
    with pytest.raises(TtsError):
        await collect(speaker.speak("Hello.", "en", 8000))


async def test_empty_audio_counts_as_failure(tmp_path: Path) -> None:
    class Silent(FakeVoice):
        async def synthesize(self, text: str) -> bytes:
            return b""

    backup = FakeVoice("fake:backup")
    speaker = make(tmp_path, Silent("fake:silent"), backup)
    assert await collect(speaker.speak("Hello.", "en", 8000)) == backup.pcm_for("Hello.", 1)


async def test_nothing_to_say_yields_nothing(tmp_path: Path) -> None:
    voice = FakeVoice()
    speaker = make(tmp_path, voice)
    assert await collect(speaker.speak("。。", "zh", 8000)) == b""
    assert voice.calls == []
    assert not speaker.is_cached("", "zh", 8000)


async def test_unknown_language(tmp_path: Path) -> None:
    speaker = Speaker({"zh": FakeVoice()}, PromptCache(tmp_path))
    with pytest.raises(TtsError, match="no voice"):
        await collect(speaker.speak("Hello.", "en", 8000))
    with pytest.raises(TtsError, match="no voice"):
        speaker.is_cached("Hello.", "en", 8000)


async def test_prewarm_synthesises_once_and_skips_cached(tmp_path: Path) -> None:
    voice = FakeVoice()
    speaker = make(tmp_path, voice)
    prompts = [("en", TEXT_EN), ("en", "Thank you."), ("zh", "您好。请输入号码。")]
    stats = await speaker.prewarm(prompts, 8000)  # type: ignore[arg-type]
    assert (stats.texts, stats.pieces, stats.cached, stats.synthesized, stats.failed) == (3, 5, 0, 5, 0)
    assert len(voice.calls) == 5  # "Thank you." once
    assert all(speaker.is_cached(t, lang, 8000) for lang, t in prompts)  # type: ignore[arg-type]
    # Next start-up: everything on disk, loaded into memory, nothing synthesised.
    fresh = make(tmp_path, voice)
    stats = await fresh.prewarm(prompts, 8000)  # type: ignore[arg-type]
    assert (stats.cached, stats.synthesized) == (5, 0)
    assert fresh.cache.peek(voice.voice_id, 8000, "Thank you.") is not None
    assert len(voice.calls) == 5


async def test_prewarm_counts_failures_without_raising(tmp_path: Path) -> None:
    voice = FakeVoice(fail={"Bad one."})
    speaker = make(tmp_path, voice)
    stats = await speaker.prewarm([("en", "Good one. Bad one.")], 8000)
    assert (stats.synthesized, stats.failed) == (1, 1)


async def test_cached_first_sentence_with_uncached_rest(tmp_path: Path) -> None:
    voice = FakeVoice()
    speaker = make(tmp_path, voice)
    await speaker.prewarm([("en", "Hello there.")], 8000)
    await collect(speaker.speak("Hello there. Your ticket is ready.", "en", 8000))
    assert voice.calls == ["Hello there.", "Your ticket is ready."]
    assert speaker.counters.cache_hits == 1


async def test_aclose_closes_voices_once(tmp_path: Path) -> None:
    class Closable(FakeVoice):
        closed = 0

        async def aclose(self) -> None:
            self.closed += 1

    voice = Closable()
    speaker = make(tmp_path, voice)
    await speaker.aclose()
    assert voice.closed == 1


def test_lookahead_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        make(tmp_path, FakeVoice(), lookahead=0)


async def test_plain_break_without_aclose_is_finalised(tmp_path: Path) -> None:
    """A consumer that just breaks out of ``async for``: asyncio finalises the abandoned
    generator (its aclose runs as a task), which reaps the producer."""
    voice = FakeVoice(delay_s=0.05)
    speaker = make(tmp_path, voice, chunk_ms=10)
    before = other_tasks()
    async for _chunk in speaker.speak(TEXT_EN, "en", 8000):
        break
    await eventually(lambda: other_tasks() == before)
    assert voice.active == 0

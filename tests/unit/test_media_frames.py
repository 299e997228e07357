"""Frame maths, filler detection, levels and resampling of L16le mono PCM.
Category: unit (pure functions, no I/O, no clock)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from voice.media.frames import (
    PCM_L16_DTYPE,
    AudioFormat,
    FrameAssembler,
    InboundFrame,
    dbfs,
    is_filler,
    rms,
    silence,
    split_into_frames,
)
from voice.media.resample import StreamResampler, resample_pcm


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> bytes:
    n = round(seconds * rate)
    t = np.arange(n) / rate
    x = (amplitude * 32767 * np.sin(2 * math.pi * freq * t)).astype(PCM_L16_DTYPE)
    return x.tobytes()


@pytest.mark.parametrize(
    ("rate", "ptime", "samples", "nbytes"),
    [(8000, 20, 160, 320), (8000, 30, 240, 480), (16000, 20, 320, 640), (16000, 30, 480, 960)],
)
def test_frame_maths(rate: int, ptime: int, samples: int, nbytes: int) -> None:
    fmt = AudioFormat(rate, ptime)
    assert fmt.samples_per_frame == samples
    assert fmt.frame_bytes == nbytes
    assert fmt.ptime_s == pytest.approx(ptime / 1000)
    assert fmt.duration_s(nbytes * 50) == pytest.approx(ptime * 50 / 1000)
    assert str(fmt) == f"L16le/{rate}Hz/{ptime}ms/{nbytes}B"


@pytest.mark.parametrize(("rate", "ptime"), [(0, 20), (8000, 0), (-8000, 20), (11025, 30)])
def test_bad_formats_are_rejected(rate: int, ptime: int) -> None:
    with pytest.raises(ValueError):
        AudioFormat(rate, ptime)


def test_filler_detection() -> None:
    assert is_filler(b"\xff" * 320)
    assert is_filler(b"\xff" * 480)
    assert not is_filler(b"")
    assert not is_filler(bytes(320))
    assert not is_filler(b"\xff" * 319 + b"\xfe")
    assert not is_filler(tone(440, 0.02, 8000))


def test_filler_frame_reads_as_silence() -> None:
    fmt = AudioFormat(8000, 20)
    filler = InboundFrame(data=b"\xff" * 320, received_at=1.0, is_filler=True, seq=0, fmt=fmt)
    audio = tone(440, 0.02, 8000)
    real = InboundFrame(data=audio, received_at=1.02, is_filler=False, seq=1, fmt=fmt)
    assert filler.pcm == silence(fmt) == bytes(320)
    assert real.pcm == audio
    assert rms(filler.data) == 0.0  # 0xFF filler is not a -1 DC signal


def test_silence() -> None:
    assert silence(AudioFormat(8000, 30)) == bytes(480)
    assert silence(AudioFormat(8000, 20), frames=3) == bytes(960)


@pytest.mark.parametrize(("rate", "ptime"), [(8000, 20), (8000, 30), (16000, 20)])
def test_split_pads_last_frame(rate: int, ptime: int) -> None:
    fmt = AudioFormat(rate, ptime)
    pcm = tone(300, 0.5, rate)[: fmt.frame_bytes * 7 + 100]
    frames = split_into_frames(pcm, fmt)
    assert len(frames) == 8 == fmt.frames_for(len(pcm))
    assert all(len(f) == fmt.frame_bytes for f in frames)
    assert b"".join(frames)[: len(pcm)] == pcm
    assert frames[-1][100:] == bytes(fmt.frame_bytes - 100)


def test_split_exact_empty_and_odd() -> None:
    fmt = AudioFormat(8000, 20)
    assert split_into_frames(b"", fmt) == []
    assert len(split_into_frames(bytes(640), fmt)) == 2
    odd = split_into_frames(b"\x01\x02\x03", fmt)  # half a sample is dropped, no crash
    assert len(odd) == 1 and odd[0][:2] == b"\x01\x02" and odd[0][2:] == bytes(318)


def test_assembler_matches_split_for_any_chunking() -> None:
    fmt = AudioFormat(8000, 20)
    pcm = tone(500, 0.37, 8000)
    asm = FrameAssembler(fmt)
    out: list[bytes] = []
    sizes = [1, 7, 333, 320, 1000, 5, 2]  # odd sizes split samples across chunks
    pos = 0
    for i in range(1000):
        if pos >= len(pcm):
            break
        size = sizes[i % len(sizes)]
        out += asm.push(pcm[pos : pos + size])
        pos += size
    out += asm.flush()
    assert out == split_into_frames(tone(500, 0.37, 8000), fmt)
    assert asm.pending_bytes == 0 and asm.flush() == []


def test_levels() -> None:
    assert rms(b"") == 0.0
    assert rms(bytes(320)) == 0.0
    assert dbfs(bytes(320)) == -100.0
    full = tone(1000, 0.1, 8000, amplitude=1.0)
    assert rms(full) == pytest.approx(1 / math.sqrt(2), rel=0.01)
    assert dbfs(full) == pytest.approx(-3.01, abs=0.1)
    assert dbfs(tone(1000, 0.1, 8000, amplitude=0.1)) == pytest.approx(-23.0, abs=0.2)
    # little-endian: 0x0100 is 256, not 1
    assert rms(b"\x00\x01" * 160) == pytest.approx(256 / 32768)


def test_resample_one_shot_length_and_passthrough() -> None:
    pcm = tone(440, 1.0, 22050)
    out = resample_pcm(pcm, 22050, 8000)
    assert len(out) == 8000 * 2
    assert resample_pcm(pcm, 8000, 8000) == pcm
    assert resample_pcm(b"", 22050, 8000) == b""


def test_resample_keeps_the_tone() -> None:
    out = np.frombuffer(resample_pcm(tone(440, 1.0, 22050), 22050, 8000), dtype=PCM_L16_DTYPE)
    spectrum = np.abs(np.fft.rfft(out.astype(np.float64)))
    peak_hz = np.argmax(spectrum) * 8000 / len(out)
    assert abs(peak_hz - 440) < 2


def test_stream_resampler_chunked_equals_total_and_resets() -> None:
    pcm = tone(440, 1.0, 22050)
    rs = StreamResampler(22050, 8000)
    out = b""
    for i in range(0, len(pcm), 999):  # odd chunk sizes: half samples carried over
        out += rs.process(pcm[i : i + 999])
    out += rs.flush()
    assert abs(len(out) // 2 - 8000) <= 2
    # state is cleared: the same utterance again gives the same output
    again = rs.process(pcm) + rs.flush()
    assert again == rs.process(pcm) + rs.flush()
    assert abs(len(again) // 2 - 8000) <= 2


def test_stream_resampler_passthrough() -> None:
    rs = StreamResampler(8000, 8000)
    assert rs.passthrough
    assert rs.process(b"\x01\x02\x03") == b"\x01\x02"
    assert rs.process(b"\x04") == b"\x03\x04"
    assert rs.flush() == b""

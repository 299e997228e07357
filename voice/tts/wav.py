"""Just enough RIFF/WAVE for TTS: read 16-bit mono PCM, write it.

Not the stdlib ``wave`` module because espeak-ng writing to a pipe cannot seek back, so
its header carries placeholder sizes (0x7FFFF000 here) that ``wave`` takes literally;
we read chunk by chunk and take what is there. ``strict`` (for our own cache files)
instead rejects any size mismatch, which is how a truncated file is detected.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from voice.tts.base import TtsError

_PCM = 1
_EXTENSIBLE = 0xFFFE
_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")


class WavError(TtsError):
    """Not a WAV file we can play (bad header, not 16-bit mono PCM, truncated)."""


@dataclass(frozen=True, slots=True)
class Wav:
    sample_rate: int
    pcm: bytes  # L16le mono


def parse_wav(data: bytes, *, strict: bool = False) -> Wav:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    pos = 12
    rate: int | None = None
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise WavError("short fmt chunk")
            fmt, channels, rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", data, body)
            if fmt == _EXTENSIBLE and size >= 40:
                (fmt,) = struct.unpack_from("<H", data, body + 24)  # sub-format GUID's first field
            if fmt != _PCM or channels != 1 or bits != 16:
                raise WavError(f"want 16-bit mono PCM, got format={fmt} channels={channels} bits={bits}")
            if rate <= 0:
                raise WavError(f"bad sample rate {rate}")
        elif chunk_id == b"data":
            if rate is None:
                raise WavError("data chunk before fmt chunk")
            available = len(data) - body
            if size > available:
                if strict:
                    raise WavError(f"truncated: data chunk says {size} bytes, {available} present")
                size = available  # streamed header with a placeholder size
            elif strict and body + size + (size & 1) != len(data):
                raise WavError("trailing bytes after data chunk")
            pcm = data[body : body + size]
            if len(pcm) % 2:
                if strict:
                    raise WavError("odd data length")
                pcm = pcm[:-1]
            return Wav(rate, pcm)
        pos = body + size + (size & 1)  # chunks are padded to an even length
    raise WavError("no data chunk")


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    """A canonical 44-byte-header WAV of L16le mono ``pcm``."""
    if len(pcm) % 2:
        raise ValueError("odd PCM length")
    header = _HEADER.pack(
        b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, _PCM, 1, sample_rate,
        sample_rate * 2, 2, 16, b"data", len(pcm),
    )
    return header + pcm

"""Typed audio frames for the unicast media path.

Wire format (checked against signalwire/freeswitch ``src/switch_ivr.c``, the park loop
and ``switch_ivr_activate_unicast``): without ``flags: native`` FreeSWITCH decodes each
frame it reads from the channel into its internal ``L16`` codec, created at the read
codec's ``actual_samples_per_second`` and ``microseconds_per_packet``, mono, and sends
the decoded buffer as one UDP datagram. ``L16`` inside FreeSWITCH is the core's signed
linear format: ``int16_t`` in *host* byte order (its raw codec is a plain copy; only the
RTP layer byte-swaps L16 payloads to network order). Every host FreeSWITCH runs on in
practice (x86-64, aarch64) is little-endian, so this module fixes the format as
**signed 16-bit little-endian mono** (``PCM_L16_DTYPE``) and says so in every name.

When the frame read from the channel is comfort noise (``SFF_CNG``: the caller sends
nothing), FreeSWITCH sends ``decoded_bytes_per_packet`` bytes of ``0xFF`` instead. As
samples those are -1s, not a signal: they are flagged as filler and read as silence.

The return path (``unicast_thread_run``) writes each received datagram to the channel
as one frame of ``len / 2`` samples, without buffering or pacing, so we must send
exactly one frame of the call's length per datagram, in real time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import structlog

log = structlog.get_logger(__name__)

SAMPLE_WIDTH_BYTES = 2
"""L16: two bytes per sample, mono."""

PCM_L16_DTYPE = np.dtype("<i2")
"""Signed 16-bit little-endian: FreeSWITCH's host-endian L16 on x86-64/aarch64."""

FILLER_BYTE = 0xFF
"""FreeSWITCH fills a frame with this byte when the channel read a CNG frame."""

_FULL_SCALE = 32768.0


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """L16 mono at ``sample_rate`` Hz, framed every ``ptime_ms`` milliseconds.

    ``AudioFormat(8000, 20)`` is a PCMU/PCMA call at 20 ms: 160 samples, 320 bytes.
    """

    sample_rate: int
    ptime_ms: int

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.ptime_ms <= 0:
            raise ValueError(f"bad audio format {self.sample_rate} Hz / {self.ptime_ms} ms")
        if (self.sample_rate * self.ptime_ms) % 1000:
            raise ValueError(
                f"{self.ptime_ms} ms at {self.sample_rate} Hz is not a whole number of samples"
            )

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate * self.ptime_ms // 1000

    @property
    def frame_bytes(self) -> int:
        return self.samples_per_frame * SAMPLE_WIDTH_BYTES

    @property
    def ptime_s(self) -> float:
        return self.ptime_ms / 1000.0

    @property
    def bytes_per_second(self) -> int:
        return self.sample_rate * SAMPLE_WIDTH_BYTES

    def duration_s(self, pcm_bytes: int) -> float:
        """Seconds of audio in ``pcm_bytes`` bytes of L16 at this rate."""
        return pcm_bytes / self.bytes_per_second

    def frames_for(self, pcm_bytes: int) -> int:
        """How many frames ``split_into_frames`` makes of ``pcm_bytes`` bytes."""
        return -(-(pcm_bytes - pcm_bytes % SAMPLE_WIDTH_BYTES) // self.frame_bytes)

    def __str__(self) -> str:
        return f"L16le/{self.sample_rate}Hz/{self.ptime_ms}ms/{self.frame_bytes}B"


@dataclass(frozen=True, slots=True)
class InboundFrame:
    """One datagram from FreeSWITCH: one frame of the caller's audio.

    ``data`` is exactly ``fmt.frame_bytes`` of L16le. ``received_at`` is the monotonic
    clock reading when it arrived; ``seq`` counts accepted frames from 0. A filler frame
    (all 0xFF: the caller sent nothing) keeps its bytes in ``data`` but is silence:
    consumers should read ``pcm`` (zeros for filler) rather than ``data``.
    """

    data: bytes
    received_at: float
    is_filler: bool
    seq: int
    fmt: AudioFormat

    @property
    def pcm(self) -> bytes:
        """The audio to feed VAD/ASR/recording: ``data``, or silence for filler."""
        return silence(self.fmt) if self.is_filler else self.data


def is_filler(datagram: bytes) -> bool:
    """True for a non-empty buffer made only of 0xFF (FreeSWITCH's CNG filler)."""
    return bool(datagram) and not datagram.strip(b"\xff")


def silence(fmt: AudioFormat, frames: int = 1) -> bytes:
    """``frames`` frames of digital silence (zeros) in ``fmt``."""
    return bytes(fmt.frame_bytes * frames)


def split_into_frames(pcm: bytes, fmt: AudioFormat) -> list[bytes]:
    """Cut L16le ``pcm`` into frames of exactly ``fmt.frame_bytes``; the last frame is
    zero-padded. A trailing odd byte (half a sample) is dropped with a warning."""
    if len(pcm) % SAMPLE_WIDTH_BYTES:
        log.warning("media.pcm_odd_length", bytes=len(pcm), dropped=1)
        pcm = pcm[:-1]
    size = fmt.frame_bytes
    frames = [pcm[i : i + size] for i in range(0, len(pcm), size)]
    if frames and len(frames[-1]) < size:
        frames[-1] = frames[-1] + bytes(size - len(frames[-1]))
    return frames


class FrameAssembler:
    """Streaming ``split_into_frames``: push chunks of any size (even odd byte counts),
    get whole frames back; ``flush`` returns the zero-padded remainder."""

    def __init__(self, fmt: AudioFormat) -> None:
        self.fmt = fmt
        self._buf = bytearray()

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)

    def push(self, chunk: bytes) -> list[bytes]:
        self._buf += chunk
        size = self.fmt.frame_bytes
        whole = len(self._buf) - len(self._buf) % size
        if not whole:
            return []
        out = [bytes(self._buf[i : i + size]) for i in range(0, whole, size)]
        del self._buf[:whole]
        return out

    def flush(self) -> list[bytes]:
        """The remainder as one zero-padded frame (none if empty); resets the buffer."""
        rest = bytes(self._buf)
        self._buf.clear()
        return split_into_frames(rest, self.fmt) if rest else []

    def clear(self) -> None:
        self._buf.clear()


def _samples(pcm: bytes) -> np.ndarray[tuple[int], np.dtype[np.int16]]:
    usable = len(pcm) - len(pcm) % SAMPLE_WIDTH_BYTES
    return np.frombuffer(pcm[:usable], dtype=PCM_L16_DTYPE)


def rms(pcm: bytes) -> float:
    """Root mean square of L16le ``pcm`` as a fraction of full scale (0.0–1.0).
    Empty input and filler frames count as 0.0."""
    if not pcm or is_filler(pcm):
        return 0.0
    x = _samples(pcm).astype(np.float64)
    if x.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(x * x))) / _FULL_SCALE


def dbfs(pcm: bytes, floor: float = -100.0) -> float:
    """Level of L16le ``pcm`` in dBFS (RMS), never below ``floor``."""
    level = rms(pcm)
    if level <= 0.0:
        return floor
    return max(floor, 20.0 * math.log10(level))

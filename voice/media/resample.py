"""Resampling of L16le mono PCM with soxr (e.g. Piper 22050 Hz → the call's 8000 Hz).

Cost measured here: 3 s of 22050 Hz audio to 8000 Hz takes under 1 ms, so chunks of a
sentence are resampled on the event loop; nothing else in this module blocks.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import numpy as np
import soxr
import structlog

from voice.media.frames import PCM_L16_DTYPE, SAMPLE_WIDTH_BYTES

log = structlog.get_logger(__name__)

_EMPTY = np.zeros(0, dtype=np.int16)


def _to_int16(pcm: bytes) -> np.ndarray[tuple[int], np.dtype[np.int16]]:
    return np.frombuffer(pcm, dtype=PCM_L16_DTYPE).astype(np.int16, copy=False)


def _to_bytes(samples: object) -> bytes:
    return np.asarray(samples, dtype=np.int16).astype(PCM_L16_DTYPE, copy=False).tobytes()


def resample_pcm(pcm: bytes, in_rate: int, out_rate: int, *, quality: str = "HQ") -> bytes:
    """One-shot: a whole L16le buffer from ``in_rate`` to ``out_rate`` Hz."""
    if len(pcm) % SAMPLE_WIDTH_BYTES:
        log.warning("media.pcm_odd_length", bytes=len(pcm), dropped=1)
        pcm = pcm[:-1]
    if in_rate == out_rate or not pcm:
        return pcm
    return _to_bytes(soxr.resample(_to_int16(pcm), in_rate, out_rate, quality=quality))


class StreamResampler:
    """Streaming resampler for one utterance at a time.

    ``process`` takes chunks of any byte length (a half sample is carried over) and
    returns what soxr has ready; ``flush`` drains soxr's tail at the end of an utterance
    and resets, so the next utterance starts with no leftover state (``reset`` drops the
    state without draining, e.g. after barge-in).
    """

    def __init__(self, in_rate: int, out_rate: int, *, quality: str = "HQ") -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"bad rates {in_rate} -> {out_rate}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._carry = b""
        self._stream: soxr.ResampleStream | None = (
            None
            if in_rate == out_rate
            else soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=quality)
        )

    @property
    def passthrough(self) -> bool:
        return self._stream is None

    def process(self, pcm: bytes) -> bytes:
        data = self._carry + pcm
        cut = len(data) - len(data) % SAMPLE_WIDTH_BYTES
        self._carry = data[cut:]
        data = data[:cut]
        if self._stream is None or not data:
            return data
        return _to_bytes(self._stream.resample_chunk(_to_int16(data)))

    def flush(self) -> bytes:
        """End of utterance: the remaining output; the state is cleared afterwards."""
        if self._carry:
            log.warning("media.pcm_odd_length", bytes=1, dropped=1)
        self._carry = b""
        if self._stream is None:
            return b""
        tail = _to_bytes(self._stream.resample_chunk(_EMPTY, last=True))
        self._stream.clear()
        return tail

    def reset(self) -> None:
        """Drop all state (no output), e.g. when playback was interrupted."""
        self._carry = b""
        if self._stream is not None:
            self._stream.clear()


async def resample_stream(
    chunks: AsyncIterable[bytes], in_rate: int, out_rate: int, *, quality: str = "HQ"
) -> AsyncIterator[bytes]:
    """Resample an async stream of L16le chunks (one utterance); empty outputs are
    skipped and soxr's tail comes last. Feed the result to ``UnicastEndpoint.play_stream``."""
    rs = StreamResampler(in_rate, out_rate, quality=quality)
    try:
        async for chunk in chunks:
            out = rs.process(chunk)
            if out:
                yield out
        tail = rs.flush()
        if tail:
            yield tail
    finally:
        rs.reset()

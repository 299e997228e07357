"""Prompt cache: synthesised sentences at the call's rate, on disk and in memory.

Layout: ``<dir>/<key[:2]>/<key>.wav`` (16-bit mono WAV at the call rate, already
resampled), ``key = sha256("v1", voice_id, rate, spoken text)``. Writes go to a
temporary file in the same folder and are renamed over the target, so a reader never
sees half a file; a file that does not parse strictly (e.g. cut short by a crash) is
ignored, removed and written again. An LRU in memory (bounded in bytes) serves
prewarmed prompts with no I/O at all. Disk I/O runs in threads.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import structlog

from voice.tts.wav import WavError, parse_wav, wav_bytes

log = structlog.get_logger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE_DIR = REPO_ROOT / "var" / "tts-cache"
KEY_VERSION = "v1"  # bump when what a key means changes (e.g. the resampler)


@dataclass(slots=True)
class CacheCounters:
    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0
    corrupt: int = 0
    writes: int = 0
    write_errors: int = 0


def cache_key(voice_id: str, rate: int, text: str) -> str:
    material = "\x00".join((KEY_VERSION, voice_id, str(rate), text))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class PromptCache:
    def __init__(self, directory: Path | str | None = None, *, memory_bytes: int = 64 << 20) -> None:
        self.directory = Path(directory) if directory is not None else DEFAULT_CACHE_DIR
        self.memory_bytes = memory_bytes
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._memory_size = 0
        self.counters = CacheCounters()

    key = staticmethod(cache_key)

    def path_for(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.wav"

    # -- memory (no I/O) ------------------------------------------------------------

    def peek(self, voice_id: str, rate: int, text: str) -> bytes | None:
        """From memory only: what a cached prompt's first audio costs (a dict look-up)."""
        key = cache_key(voice_id, rate, text)
        pcm = self._memory.get(key)
        if pcm is not None:
            self._memory.move_to_end(key)
        return pcm

    def _remember(self, key: str, pcm: bytes) -> None:
        if len(pcm) > self.memory_bytes:
            return
        old = self._memory.pop(key, None)
        if old is not None:
            self._memory_size -= len(old)
        self._memory[key] = pcm
        self._memory_size += len(pcm)
        while self._memory_size > self.memory_bytes:
            _, dropped = self._memory.popitem(last=False)
            self._memory_size -= len(dropped)

    def contains(self, voice_id: str, rate: int, text: str) -> bool:
        """In memory, or a file on disk (one ``stat``; the file is validated on read)."""
        key = cache_key(voice_id, rate, text)
        return key in self._memory or self.path_for(key).is_file()

    @property
    def memory_size(self) -> int:
        return self._memory_size

    # -- disk -----------------------------------------------------------------------

    async def get(self, voice_id: str, rate: int, text: str) -> bytes | None:
        key = cache_key(voice_id, rate, text)
        pcm = self._memory.get(key)
        if pcm is not None:
            self._memory.move_to_end(key)
            self.counters.memory_hits += 1
            return pcm
        pcm = await asyncio.to_thread(self._read, key, rate)
        if pcm is None:
            self.counters.misses += 1
            return None
        self.counters.disk_hits += 1
        self._remember(key, pcm)
        return pcm

    async def put(self, voice_id: str, rate: int, text: str, pcm: bytes) -> None:
        """Remember at once, then write the file (atomically) in a thread. A failed
        write is logged and counted, never raised: the audio is still good to play."""
        key = cache_key(voice_id, rate, text)
        self.remember(key, pcm)
        await self.persist(key, rate, pcm)

    def remember(self, key: str, pcm: bytes) -> None:
        self._remember(key, pcm)

    async def persist(self, key: str, rate: int, pcm: bytes) -> None:
        try:
            await asyncio.to_thread(self._write, key, rate, pcm)
        except OSError as e:
            self.counters.write_errors += 1
            log.warning("tts.cache_write_failed", key=key[:16], error=str(e))
            return
        self.counters.writes += 1

    def _read(self, key: str, rate: int) -> bytes | None:
        path = self.path_for(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            log.warning("tts.cache_read_failed", key=key[:16], error=str(e))
            return None
        try:
            wav = parse_wav(data, strict=True)
            if wav.sample_rate != rate:
                raise WavError(f"rate {wav.sample_rate}, expected {rate}")
            if not wav.pcm:
                raise WavError("no audio")
        except WavError as e:
            self.counters.corrupt += 1
            log.warning("tts.cache_corrupt", key=key[:16], error=str(e), bytes=len(data))
            try:
                path.unlink()
            except OSError:
                pass
            return None
        return wav.pcm

    def _write(self, key: str, rate: int, pcm: bytes) -> None:
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Same folder as the target, so os.replace is an atomic rename on one filesystem.
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(wav_bytes(pcm, rate))
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def clear_memory(self) -> None:
        self._memory.clear()
        self._memory_size = 0

"""WAV reading/writing and the prompt cache (keys, atomic writes, corrupt files, LRU).
Category: unit (tmp_path only)."""

from __future__ import annotations

import asyncio
import os
import struct
from pathlib import Path

import pytest

from voice.tts.cache import PromptCache, cache_key
from voice.tts.wav import WavError, parse_wav, wav_bytes

PCM = struct.pack("<8h", 0, 1000, -1000, 32767, -32768, 5, -5, 0)


def files_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


# --- wav -----------------------------------------------------------------------------


def test_wav_round_trip() -> None:
    data = wav_bytes(PCM, 8000)
    assert len(data) == 44 + len(PCM)
    wav = parse_wav(data, strict=True)
    assert (wav.sample_rate, wav.pcm) == (8000, PCM)


def test_wav_with_streamed_placeholder_sizes_as_espeak_writes_it() -> None:
    data = bytearray(wav_bytes(PCM, 22050))
    struct.pack_into("<I", data, 4, 0x7FFFF024)
    struct.pack_into("<I", data, 40, 0x7FFFF000)
    wav = parse_wav(bytes(data))
    assert (wav.sample_rate, wav.pcm) == (22050, PCM)
    with pytest.raises(WavError, match="truncated"):
        parse_wav(bytes(data), strict=True)


def test_wav_skips_other_chunks_and_reads_extensible_pcm() -> None:
    fmt = struct.pack("<HHIIHHHHIH14s", 0xFFFE, 1, 16000, 32000, 2, 16, 22, 16, 4, 1, b"\x00" * 14)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # odd size, padded
    body += b"data" + struct.pack("<I", len(PCM)) + PCM
    wav = parse_wav(b"RIFF" + struct.pack("<I", len(body)) + body, strict=True)
    assert (wav.sample_rate, wav.pcm) == (16000, PCM)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a RIFF"),
        (b"RIFF\x00\x00\x00\x00WAVX", "not a RIFF"),
        (wav_bytes(PCM, 8000)[:40], "no data chunk"),
        (wav_bytes(PCM, 8000).replace(b"fmt ", b"xxxx"), "before fmt"),
    ],
)
def test_wav_errors(data: bytes, message: str) -> None:
    with pytest.raises(WavError, match=message):
        parse_wav(data)


def test_wav_rejects_stereo_and_8_bit() -> None:
    stereo = bytearray(wav_bytes(PCM, 8000))
    struct.pack_into("<H", stereo, 22, 2)
    with pytest.raises(WavError, match="mono"):
        parse_wav(bytes(stereo))
    eight = bytearray(wav_bytes(PCM, 8000))
    struct.pack_into("<H", eight, 34, 8)
    with pytest.raises(WavError, match="16-bit"):
        parse_wav(bytes(eight))


def test_wav_drops_a_trailing_half_sample_when_lenient() -> None:
    data = bytearray(wav_bytes(PCM, 8000) + b"\x01")
    struct.pack_into("<I", data, 40, len(PCM) + 1)
    assert parse_wav(bytes(data)).pcm == PCM
    with pytest.raises(WavError):
        parse_wav(bytes(data), strict=True)


# --- keys ----------------------------------------------------------------------------


def test_key_includes_voice_rate_and_text() -> None:
    base = cache_key("piper:a", 8000, "您好")
    assert base == cache_key("piper:a", 8000, "您好")
    assert len(base) == 64 and all(c in "0123456789abcdef" for c in base)
    others = {cache_key("piper:b", 8000, "您好"), cache_key("piper:a", 16000, "您好"),
              cache_key("piper:a", 8000, "您好。"), cache_key("espeak:a", 8000, "您好")}
    assert base not in others and len(others) == 4
    # No ambiguity from joining fields.
    assert cache_key("a", 8000, "b") != cache_key("a\x008000", 0, "b")


# --- PromptCache -----------------------------------------------------------------------


async def test_put_then_get_from_memory_and_disk(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path)
    await cache.put("v", 8000, "hello", PCM)
    key = cache_key("v", 8000, "hello")
    path = tmp_path / key[:2] / f"{key}.wav"
    assert path.is_file()
    assert parse_wav(path.read_bytes(), strict=True).pcm == PCM
    assert cache.peek("v", 8000, "hello") == PCM
    assert await cache.get("v", 8000, "hello") == PCM
    assert cache.counters.memory_hits == 1

    fresh = PromptCache(tmp_path)  # a new process: disk only
    assert fresh.peek("v", 8000, "hello") is None
    assert fresh.contains("v", 8000, "hello")
    assert await fresh.get("v", 8000, "hello") == PCM
    assert fresh.counters.disk_hits == 1
    assert fresh.peek("v", 8000, "hello") == PCM  # promoted to memory
    assert await fresh.get("v", 16000, "hello") is None  # another rate is another entry
    assert await fresh.get("w", 8000, "hello") is None
    assert fresh.counters.misses == 2


async def test_corrupt_file_is_ignored_removed_and_rewritten(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path)
    await cache.put("v", 8000, "x", PCM)
    path = cache.path_for(cache_key("v", 8000, "x"))
    good = path.read_bytes()
    for bad in (good[:-3], b"garbage", b"", wav_bytes(PCM, 16000), wav_bytes(b"", 8000)):
        path.write_bytes(bad)
        fresh = PromptCache(tmp_path)
        assert await fresh.get("v", 8000, "x") is None
        assert fresh.counters.corrupt == 1
        assert not path.exists()
        await fresh.put("v", 8000, "x", PCM)
        assert path.read_bytes() == good


async def test_write_is_atomic_no_partial_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = PromptCache(tmp_path)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    await cache.put("v", 8000, "x", PCM)  # logged and counted, not raised
    assert cache.counters.write_errors == 1
    assert cache.peek("v", 8000, "x") == PCM  # still playable from memory
    assert files_in(tmp_path) == []  # no tmp file left behind
    monkeypatch.undo()
    await cache.persist(cache_key("v", 8000, "x"), 8000, PCM)
    assert [p.name for p in files_in(tmp_path)] == [f"{cache_key('v', 8000, 'x')}.wav"]


async def test_concurrent_writers_of_one_key_leave_one_valid_file(tmp_path: Path) -> None:
    caches = [PromptCache(tmp_path) for _ in range(8)]
    await asyncio.gather(*(c.put("v", 8000, "same", PCM) for c in caches))
    files = files_in(tmp_path)
    assert len(files) == 1
    assert parse_wav(files[0].read_bytes(), strict=True).pcm == PCM


async def test_memory_is_bounded_lru(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path, memory_bytes=3 * len(PCM))
    for name in "abc":
        cache.remember(cache_key("v", 8000, name), PCM)
    assert cache.peek("v", 8000, "a") == PCM  # a is now the most recent
    cache.remember(cache_key("v", 8000, "d"), PCM)
    assert cache.peek("v", 8000, "b") is None  # least recently used went
    assert cache.peek("v", 8000, "a") == PCM
    assert cache.memory_size == 3 * len(PCM)
    cache.remember(cache_key("v", 8000, "huge"), PCM * 10)  # bigger than the budget: not kept
    assert cache.peek("v", 8000, "huge") is None
    cache.clear_memory()
    assert cache.memory_size == 0


async def test_contains_memory_only_entry(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path)
    assert not cache.contains("v", 8000, "x")
    cache.remember(cache_key("v", 8000, "x"), PCM)
    assert cache.contains("v", 8000, "x")

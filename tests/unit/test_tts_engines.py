"""The engines' plumbing without the engines: EspeakSynthesizer against a stand-in
executable (a script writing what espeak-ng writes), PiperHttpSynthesizer against a
local aiohttp app answering as Piper's server does, build_speaker's choices.
Category: unit (local processes and loopback HTTP only)."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from voice.tts.base import TtsError
from voice.tts.build import build_speaker
from voice.tts.espeak import EspeakSynthesizer
from voice.tts.piper_http import (
    PiperHttpSynthesizer,
    PiperServer,
    piper_voice_id,
    read_piper_sample_rate,
)
from voice.tts.wav import wav_bytes

PCM = struct.pack("<6h", 0, 100, 200, 300, -100, -200)

FAKE_ESPEAK = r'''
import os, struct, sys, time
text = sys.stdin.buffer.read().decode("utf-8")
args = sys.argv[1:]
with open(os.environ["FAKE_ESPEAK_ARGS"], "a", encoding="utf-8") as f:
    f.write(repr((args, text)) + "\n")
mode = os.environ.get("FAKE_ESPEAK_MODE", "ok")
if mode == "fail":
    sys.stderr.write("unknown voice\n"); sys.exit(1)
if mode == "hang":
    with open(os.environ["FAKE_ESPEAK_ARGS"] + ".pid", "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)
if mode == "garbage":
    sys.stdout.buffer.write(b"nope"); sys.exit(0)
pcm = struct.pack("<h", 1000) * (100 * len(text))
rate = int(os.environ.get("FAKE_ESPEAK_RATE", "22050"))
# As espeak-ng writes to a pipe: placeholder sizes, since it cannot seek back.
hdr = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 0x7FFFF024, b"WAVE", b"fmt ", 16, 1, 1,
                  rate, rate * 2, 2, 16, b"data", 0x7FFFF000)
sys.stdout.buffer.write(hdr + pcm)
'''


@pytest.fixture
def fake_espeak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    exe = tmp_path / "espeak-ng"
    exe.write_text(f"#!{sys.executable}\n{FAKE_ESPEAK}", encoding="utf-8")
    exe.chmod(0o755)
    monkeypatch.setenv("FAKE_ESPEAK_ARGS", str(tmp_path / "args.log"))
    return exe


def calls(tmp_path: Path) -> list[tuple[list[str], str]]:
    lines = (tmp_path / "args.log").read_text(encoding="utf-8").splitlines()
    return [eval(line) for line in lines]  # written by repr() above


async def test_espeak_reads_streamed_wav_and_passes_text_on_stdin(fake_espeak: Path, tmp_path: Path) -> None:
    synth = EspeakSynthesizer("cmn-latn-pinyin", executable=str(fake_espeak), speed_wpm=150)
    assert synth.voice_id == "espeak:cmn-latn-pinyin@150" and synth.sample_rate == 22050
    pcm = await synth.synthesize("您好，零五七幺")
    assert len(pcm) == 2 * 100 * len("您好，零五七幺")
    [(args, text)] = calls(tmp_path)
    assert text == "您好，零五七幺"  # UTF-8 on stdin, not on the command line
    assert args == ["--stdout", "-b", "1", "-v", "cmn-latn-pinyin", "-s", "150"]


async def test_espeak_other_rate_is_resampled(fake_espeak: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_ESPEAK_RATE", "11025")
    pcm = await EspeakSynthesizer("en-us", executable=str(fake_espeak)).synthesize("abcd")
    assert abs(len(pcm) // 2 - 2 * 400) <= 4


@pytest.mark.parametrize(("mode", "message"), [("fail", "exited 1: unknown voice"), ("garbage", "output")])
async def test_espeak_failures_are_tts_errors(fake_espeak: Path, monkeypatch: pytest.MonkeyPatch,
                                              mode: str, message: str) -> None:
    monkeypatch.setenv("FAKE_ESPEAK_MODE", mode)
    with pytest.raises(TtsError, match=message):
        await EspeakSynthesizer("en-us", executable=str(fake_espeak)).synthesize("hi")


async def test_espeak_missing_or_empty_text() -> None:
    with pytest.raises(TtsError, match="cannot run"):
        await EspeakSynthesizer("en-us", executable="/nonexistent/espeak-ng").synthesize("hi")
    with pytest.raises(TtsError, match="empty"):
        await EspeakSynthesizer("en-us").synthesize("  ")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def _read_pid(tmp_path: Path) -> int | None:
    pid_file = Path(str(tmp_path / "args.log") + ".pid")
    text = pid_file.read_text() if pid_file.exists() else ""
    return int(text) if text else None


async def _hung_pid(tmp_path: Path) -> int:
    async with asyncio.timeout(10):
        while True:
            pid = _read_pid(tmp_path)
            if pid is not None:
                return pid
            await asyncio.sleep(0.01)


async def test_espeak_timeout_kills_the_process(fake_espeak: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_ESPEAK_MODE", "hang")
    synth = EspeakSynthesizer("en-us", executable=str(fake_espeak), timeout_s=1.0)
    with pytest.raises(TtsError, match="timed out"):
        await synth.synthesize("hi")
    assert not _alive(await _hung_pid(tmp_path))


async def test_espeak_cancel_kills_the_process(fake_espeak: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_ESPEAK_MODE", "hang")
    task = asyncio.create_task(EspeakSynthesizer("en-us", executable=str(fake_espeak)).synthesize("hi"))
    pid = await _hung_pid(tmp_path)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _alive(pid)


# --- Piper HTTP client against a server that answers as piper.http_server does ----------


class FakePiper:
    def __init__(self) -> None:
        self.mode = "ok"
        self.rate = 22050
        self.texts: list[str] = []

    async def synthesize(self, request: web.Request) -> web.Response:
        data = json.loads(await request.read())
        self.texts.append(data["text"])
        if self.mode == "slow":
            await asyncio.sleep(5)
        if self.mode == "error":
            return web.Response(status=500, text="Internal Server Error")
        if self.mode == "garbage":
            return web.Response(body=b"<html>", content_type="text/html")
        return web.Response(body=wav_bytes(PCM, self.rate), content_type="audio/wav")

    async def info(self, request: web.Request) -> web.Response:
        return web.json_response({"voice": {"name": "fake"}})


@pytest.fixture
async def fake_piper() -> AsyncIterator[tuple[FakePiper, str]]:
    fake = FakePiper()
    app = web.Application()
    app.router.add_post("/synthesize", fake.synthesize)
    app.router.add_get("/info", fake.info)
    server = TestServer(app)
    await server.start_server()
    yield fake, str(server.make_url("")).rstrip("/")
    await server.close()


async def test_piper_client_posts_text_and_reads_wav(fake_piper: tuple[FakePiper, str]) -> None:
    fake, url = fake_piper
    synth = PiperHttpSynthesizer(None, url, "piper:fake", 22050)
    assert await synth.synthesize("Hello there.") == PCM
    assert fake.texts == ["Hello there."]
    await synth.aclose()


async def test_piper_client_url_may_be_a_callable(fake_piper: tuple[FakePiper, str]) -> None:
    _fake, url = fake_piper
    synth = PiperHttpSynthesizer(None, lambda: url, "piper:fake", 22050)
    assert synth.server_url == url
    assert await synth.synthesize("Hi.") == PCM
    await synth.aclose()


async def test_piper_client_resamples_an_unexpected_rate(fake_piper: tuple[FakePiper, str]) -> None:
    fake, url = fake_piper
    fake.rate = 11025
    synth = PiperHttpSynthesizer(None, url, "piper:fake", 22050)
    assert abs(len(await synth.synthesize("Hi.")) - 2 * len(PCM)) <= 4
    await synth.aclose()


@pytest.mark.parametrize(("mode", "message"), [("error", "HTTP 500"), ("garbage", "bad audio"),
                                               ("slow", "timed out")])
async def test_piper_client_failures_are_tts_errors(fake_piper: tuple[FakePiper, str], mode: str,
                                                    message: str) -> None:
    fake, url = fake_piper
    fake.mode = mode
    synth = PiperHttpSynthesizer(None, url, "piper:fake", 22050, timeout_s=0.3)
    with pytest.raises(TtsError, match=message):
        await synth.synthesize("Hi.")
    await synth.aclose()


async def test_piper_client_connection_refused_is_a_tts_error() -> None:
    from voice.tts.piper_http import free_port

    synth = PiperHttpSynthesizer(None, f"http://127.0.0.1:{free_port()}", "piper:fake", 22050)
    with pytest.raises(TtsError, match="request failed"):
        await synth.synthesize("Hi.")
    await synth.aclose()


def test_timeout_grows_with_text() -> None:
    synth = PiperHttpSynthesizer(None, "http://x", "piper:fake", 22050)
    assert synth._timeout_for("a" * 100) > synth._timeout_for("a")


# --- model files and build_speaker ---------------------------------------------------


def fake_model(folder: Path, name: str = "zh_CN-test-medium", rate: int = 16000) -> Path:
    model = folder / f"{name}.onnx"
    model.write_bytes(b"not really onnx")
    (folder / f"{name}.onnx.json").write_text(json.dumps({"audio": {"sample_rate": rate}}))
    return model


def test_model_json_gives_rate_and_id(tmp_path: Path) -> None:
    model = fake_model(tmp_path)
    assert read_piper_sample_rate(model) == 16000
    assert piper_voice_id(model) == "piper:zh_CN-test-medium"
    (tmp_path / "zh_CN-test-medium.onnx.json").write_text("{}")
    with pytest.raises(TtsError, match="sample_rate"):
        read_piper_sample_rate(model)


def test_build_piper_with_espeak_fallback(tmp_path: Path, fake_espeak: Path) -> None:
    model = fake_model(tmp_path)
    stack = build_speaker({"zh": model, "en": None}, tmp_path / "cache",
                          espeak_executable=str(fake_espeak))
    speaker, servers = stack
    assert [s.model_path for s in servers] == [model.resolve()]
    assert speaker.voices["zh"].voice_id == "piper:zh_CN-test-medium"
    assert speaker.voices["zh"].sample_rate == 16000
    assert speaker.fallback["zh"].voice_id == "espeak:cmn-latn-pinyin"
    assert speaker.voices["en"].voice_id == "espeak:en-us"
    assert "en" not in speaker.fallback  # espeak has no fallback of its own
    assert speaker.cache.directory == tmp_path / "cache"


def test_build_one_server_per_model(tmp_path: Path, fake_espeak: Path) -> None:
    model = fake_model(tmp_path)
    _speaker, servers = build_speaker({"zh": model, "en": model}, tmp_path,
                                      espeak_executable=str(fake_espeak))
    assert len(servers) == 1


def test_build_missing_model_file_falls_back_to_espeak(tmp_path: Path, fake_espeak: Path) -> None:
    speaker, servers = build_speaker({"zh": tmp_path / "nope.onnx"}, tmp_path,
                                     espeak_executable=str(fake_espeak))
    assert servers == [] and speaker.voices["zh"].voice_id == "espeak:cmn-latn-pinyin"


def test_build_without_any_voice_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TtsError, match="no TTS voice for zh, en.*espeak-ng"):
        build_speaker({"zh": None, "en": None}, tmp_path, espeak_executable="/nonexistent/espeak-ng")


def test_build_piper_without_espeak_has_no_fallback(tmp_path: Path) -> None:
    model = fake_model(tmp_path)
    speaker, _ = build_speaker({"zh": model, "en": model}, tmp_path,
                               espeak_executable="/nonexistent/espeak-ng")
    assert speaker.fallback == {}


async def test_piper_server_missing_model(tmp_path: Path) -> None:
    with pytest.raises(TtsError, match="not found"):
        await PiperServer(tmp_path / "nope.onnx").start()


async def test_piper_server_that_exits_at_start_reports_its_log(tmp_path: Path) -> None:
    model = fake_model(tmp_path)  # not a real model: piper exits while loading it
    server = PiperServer(model, log_path=tmp_path / "piper.log", startup_timeout_s=60)
    with pytest.raises(TtsError, match="exited"):
        await server.start()
    assert not server.healthy()
    assert (tmp_path / "piper.log").read_text(errors="replace")

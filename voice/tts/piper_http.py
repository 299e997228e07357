"""Piper, out of process: ``PiperServer`` runs and supervises Piper's own HTTP server
(``python -m piper.http_server``), ``PiperHttpSynthesizer`` talks to it over HTTP.

Why a process: piper-tts is GPL-3.0 and this project is Apache-2.0, so no module of
ours imports ``piper``; we only run its program and exchange JSON and WAV with it
(design.md §3.7). It also keeps onnxruntime's CPU work and memory off our event loop.

The server's API (piper-tts 1.8.0, ``piper/http_server.py``, Flask, threaded):
``GET /info`` → JSON about the voice (our health check); ``POST /synthesize`` with
``{"text": "…"}`` → ``audio/wav`` of the whole text (16-bit mono at the model's rate);
empty text is a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import aiohttp
import structlog

from voice.media.resample import resample_pcm
from voice.tts.base import TtsError
from voice.tts.wav import WavError, parse_wav

log = structlog.get_logger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LOG_DIR = REPO_ROOT / "var" / "log"


def model_config_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".json")  # en_US-joe-medium.onnx.json


def read_piper_sample_rate(model_path: Path) -> int:
    """``audio.sample_rate`` from the model's ``.onnx.json`` (22050 for most voices)."""
    cfg_path = model_config_path(model_path)
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        rate = int(cfg["audio"]["sample_rate"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise TtsError(f"cannot read audio.sample_rate from {cfg_path}: {e}") from e
    if rate <= 0:
        raise TtsError(f"bad audio.sample_rate {rate} in {cfg_path}")
    return rate


def piper_voice_id(model_path: Path) -> str:
    name = model_path.name
    return "piper:" + (name[: -len(".onnx")] if name.endswith(".onnx") else name)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class PiperServer:
    """One ``piper.http_server`` process for one model, restarted if it dies.

    ``start()`` returns once the server answers ``GET /info`` (model loaded, ~1–2 s);
    the URL stays the same across restarts (same port). Output goes to ``log_path``
    (default ``var/log/piper-<model>.log``), never to a pipe nobody reads.
    """

    def __init__(
        self,
        model_path: Path,
        python: str = sys.executable,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_path: Path | None = None,
        startup_timeout_s: float = 60.0,
        restart: bool = True,
        restart_delay_s: float = 0.5,
        max_restart_delay_s: float = 30.0,
        extra_args: Sequence[str] = (),
        warmup_text: str | None = "Hello.",
    ) -> None:
        self.model_path = Path(model_path)
        self.warmup_text = warmup_text
        self.python = python
        self.host = host
        self.port = port
        self.log_path = log_path or DEFAULT_LOG_DIR / f"piper-{self.model_path.stem}.log"
        self.startup_timeout_s = startup_timeout_s
        self.restart = restart
        self.restart_delay_s = restart_delay_s
        self.max_restart_delay_s = max_restart_delay_s
        self.extra_args = tuple(extra_args)
        self.restarts = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._log_file: IO[bytes] | None = None
        self._ready = False
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self._log = log.bind(model=self.model_path.name)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def healthy(self) -> bool:
        """Running and answered its health check since it last started."""
        return self._ready and self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        if self._supervisor is not None:
            return
        if not self.model_path.is_file():
            raise TtsError(f"Piper model not found: {self.model_path}")
        if self.port == 0:
            self.port = free_port(self.host)
        self._stopping = False
        self._log_file = await asyncio.to_thread(self._open_log)
        try:
            await self._launch_and_wait()
        except BaseException:
            await self._terminate()
            self._close_log()
            raise
        self._supervisor = asyncio.create_task(self._supervise(), name=f"piper-supervisor:{self.port}")

    async def stop(self) -> None:
        self._stopping = True
        sup, self._supervisor = self._supervisor, None
        if sup is not None:
            sup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sup
        await self._terminate()
        self._close_log()
        self._log.info("tts.piper_stopped", url=self.url)

    async def __aenter__(self) -> PiperServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def probe(self, timeout_s: float = 1.0) -> bool:
        """One ``GET /info`` now."""
        try:
            timeout = aiohttp.ClientTimeout(total=timeout_s)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(f"{self.url}/info") as resp,
            ):
                await resp.read()
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    # -- internals ------------------------------------------------------------------

    def _open_log(self) -> IO[bytes]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        return open(self.log_path, "ab", buffering=0)  # noqa: SIM115 - kept open for the child

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    async def _launch_and_wait(self) -> None:
        argv = [
            self.python, "-m", "piper.http_server", "-m", str(self.model_path),
            "--host", self.host, "--port", str(self.port), *self.extra_args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        started = time.monotonic()
        self._ready = False
        self._proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
        self._log.info("tts.piper_starting", pid=self._proc.pid, url=self.url)
        deadline = started + self.startup_timeout_s
        while True:
            if self._proc.returncode is not None:
                tail = await asyncio.to_thread(self._log_tail)
                raise TtsError(
                    f"Piper server exited with {self._proc.returncode} while starting "
                    f"(log {self.log_path}): {tail}"
                )
            if await self.probe(timeout_s=1.0):
                break
            if time.monotonic() > deadline:
                raise TtsError(f"Piper server did not answer within {self.startup_timeout_s} s")
            await asyncio.sleep(0.05)
        await self._warm_up()
        self._ready = True
        self._log.info("tts.piper_ready", pid=self._proc.pid, url=self.url,
                       startup_s=round(time.monotonic() - started, 2))

    async def _warm_up(self) -> None:
        # onnxruntime's first inference is slower: pay it here, not on a caller's prompt.
        if not self.warmup_text:
            return
        try:
            timeout = aiohttp.ClientTimeout(total=30)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(f"{self.url}/synthesize", json={"text": self.warmup_text}) as resp,
            ):
                await resp.read()
                if resp.status != 200:
                    self._log.warning("tts.piper_warmup_failed", status=resp.status)
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            self._log.warning("tts.piper_warmup_failed", error=str(e))

    def _log_tail(self, nbytes: int = 600) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - nbytes))
                return f.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""

    async def _supervise(self) -> None:
        delay = self.restart_delay_s
        while not self._stopping:
            proc = self._proc
            if proc is None:
                return
            rc = await proc.wait()
            self._ready = False
            if self._stopping:
                return
            self._log.error("tts.piper_died", returncode=rc, pid=proc.pid, restart=self.restart,
                            log=str(self.log_path))
            if not self.restart:
                return
            while not self._stopping:
                await asyncio.sleep(delay)
                try:
                    await self._launch_and_wait()
                except TtsError as e:
                    self._log.error("tts.piper_restart_failed", error=str(e)[:300])
                    await self._terminate()
                    delay = min(delay * 2, self.max_restart_delay_s)
                    continue
                self.restarts += 1
                delay = self.restart_delay_s
                break

    async def _terminate(self, grace_s: float = 5.0) -> None:
        proc, self._ready = self._proc, False
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), grace_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


class PiperHttpSynthesizer:
    """A Synthesizer backed by a Piper HTTP server. ``server_url`` may be a callable so
    that the URL of a ``PiperServer`` is read at each request."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None,
        server_url: str | Callable[[], str],
        voice_id: str,
        sample_rate: int,
        *,
        timeout_s: float | None = None,
        connect_timeout_s: float = 1.0,
    ) -> None:
        self._session = session
        self._own_session = session is None
        self._url = server_url
        self.voice_id = voice_id
        self.sample_rate = sample_rate
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._rate_warned = False

    @classmethod
    def for_model(
        cls,
        session: aiohttp.ClientSession | None,
        server_url: str | Callable[[], str],
        model_path: Path,
        *,
        timeout_s: float | None = None,
        connect_timeout_s: float = 1.0,
    ) -> PiperHttpSynthesizer:
        """Voice id from the model's file name, sample rate from its ``.onnx.json``."""
        return cls(session, server_url, piper_voice_id(model_path),
                   read_piper_sample_rate(model_path), timeout_s=timeout_s,
                   connect_timeout_s=connect_timeout_s)

    @property
    def server_url(self) -> str:
        return self._url() if callable(self._url) else self._url

    def _timeout_for(self, text: str) -> float:
        if self.timeout_s is not None:
            return self.timeout_s
        # RTF ~0.05–0.15 here: a generous budget that still fails over to espeak quickly.
        return 3.0 + 0.05 * len(text)

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            if not self._own_session and self._session is not None:
                raise TtsError("the aiohttp session given to PiperHttpSynthesizer is closed")
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def synthesize(self, text: str) -> bytes:
        if not text.strip():
            raise TtsError("empty text")
        session = await self._get_session()
        timeout = aiohttp.ClientTimeout(total=self._timeout_for(text), connect=self.connect_timeout_s)
        try:
            async with session.post(
                f"{self.server_url}/synthesize", json={"text": text}, timeout=timeout
            ) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise TtsError(f"Piper HTTP {resp.status}: {body[:200]!r}")
        except TimeoutError as e:  # first: aiohttp's timeouts are ClientErrors too
            raise TtsError(f"Piper timed out after {self._timeout_for(text):.1f} s") from e
        except (aiohttp.ClientError, OSError) as e:
            raise TtsError(f"Piper request failed: {type(e).__name__}: {e}") from e
        try:
            wav = parse_wav(body)
        except WavError as e:
            raise TtsError(f"Piper returned bad audio: {e}") from e
        if not wav.pcm:
            raise TtsError("Piper returned no audio")
        if wav.sample_rate != self.sample_rate:
            if not self._rate_warned:
                log.warning("tts.piper_rate_mismatch", voice=self.voice_id,
                            expected=self.sample_rate, got=wav.sample_rate)
                self._rate_warned = True
            return resample_pcm(wav.pcm, wav.sample_rate, self.sample_rate)
        return wav.pcm

    async def aclose(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

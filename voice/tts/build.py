"""Build a Speaker from plain values: a Piper model (or None) per language, a cache
folder, whether espeak-ng is there. The Piper servers come back to be started and
stopped by the caller (``TtsStack.start`` / ``stop``)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import aiohttp
import structlog

from bot.chat.prompts import Language
from voice.tts.base import Synthesizer, TtsError
from voice.tts.cache import PromptCache
from voice.tts.espeak import ESPEAK_VOICES, EspeakSynthesizer, espeak_path
from voice.tts.piper_http import PiperHttpSynthesizer, PiperServer
from voice.tts.speaker import Speaker

log = structlog.get_logger(__name__)

LANGUAGES: tuple[Language, ...] = ("zh", "en")


class TtsStack(NamedTuple):
    speaker: Speaker
    servers: list[PiperServer]

    async def start(self) -> None:
        """Start every Piper server (in parallel would fight for the 2 cores; in turn)."""
        try:
            for server in self.servers:
                await server.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        await self.speaker.aclose()
        for server in self.servers:
            await server.stop()


def _url_of(server: PiperServer) -> Callable[[], str]:
    return lambda: server.url


def build_speaker(
    piper_models: Mapping[Language, Path | None],
    cache_dir: Path | None = None,
    *,
    languages: Sequence[Language] = LANGUAGES,
    python: str = sys.executable,
    session: aiohttp.ClientSession | None = None,
    espeak_executable: str = "espeak-ng",
    espeak_voices: Mapping[Language, str] = ESPEAK_VOICES,
    memory_cache_bytes: int = 64 << 20,
    log_dir: Path | None = None,
) -> TtsStack:
    """One voice per language: Piper if its model file exists (espeak-ng as fallback),
    else espeak-ng. Raises ``TtsError`` when a language has neither. A model shared by
    two languages runs one server."""
    espeak = espeak_path(espeak_executable)
    servers: dict[Path, PiperServer] = {}
    voices: dict[Language, Synthesizer] = {}
    fallback: dict[Language, Synthesizer] = {}
    missing: list[str] = []
    for lang in languages:
        model = piper_models.get(lang)
        esp: Synthesizer | None = (
            EspeakSynthesizer(espeak_voices[lang], executable=espeak) if espeak else None
        )
        if model is not None and not Path(model).is_file():
            log.warning("tts.piper_model_missing", language=lang, model=str(model))
            model = None
        if model is not None:
            model = Path(model).resolve()
            server = servers.get(model)
            if server is None:
                log_path = (log_dir / f"piper-{model.stem}.log") if log_dir else None
                server = servers[model] = PiperServer(model, python, log_path=log_path)
            # The URL is read per request: a server's port is known only once started.
            voices[lang] = PiperHttpSynthesizer.for_model(session, _url_of(server), model)
            if esp is not None:
                fallback[lang] = esp
            else:
                log.warning("tts.no_fallback", language=lang,
                            hint="apt-get install espeak-ng for a fallback voice")
        elif esp is not None:
            voices[lang] = esp
            log.info("tts.espeak_only", language=lang, voice=esp.voice_id)
        else:
            missing.append(lang)
    if missing:
        raise TtsError(
            f"no TTS voice for {', '.join(missing)}: no Piper model and espeak-ng not found "
            f"on PATH (apt-get install espeak-ng, or set a Piper model)"
        )
    speaker = Speaker(voices, PromptCache(cache_dir, memory_bytes=memory_cache_bytes), fallback)
    return TtsStack(speaker, list(servers.values()))

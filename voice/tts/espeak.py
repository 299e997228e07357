"""espeak-ng (Debian's package, GPL-3.0, run as a program) as a Synthesizer: the
fallback voice, and the only voice for a language without a Piper model.

One short-lived process per sentence (~20–60 ms here), text on stdin so that nothing
the caller said ends up in a command line (visible in ``ps``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil

import structlog

from bot.chat.prompts import Language
from voice.media.resample import resample_pcm
from voice.tts.base import TtsError
from voice.tts.wav import WavError, parse_wav

log = structlog.get_logger(__name__)

# design.md §3b: `-v cmn` reads digits badly; cmn-latn-pinyin reads Chinese correctly.
ESPEAK_VOICES: dict[Language, str] = {"zh": "cmn-latn-pinyin", "en": "en-us"}
ESPEAK_RATE = 22050  # espeak-ng's fixed output rate


def espeak_path(executable: str = "espeak-ng") -> str | None:
    """Full path of espeak-ng, or None if it is not installed (apt-get install espeak-ng)."""
    return shutil.which(executable)


class EspeakSynthesizer:
    def __init__(
        self,
        voice: str,
        *,
        executable: str = "espeak-ng",
        speed_wpm: int | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.voice = voice
        self.voice_id = f"espeak:{voice}" + (f"@{speed_wpm}" if speed_wpm else "")
        self.sample_rate = ESPEAK_RATE
        self.executable = executable
        self.speed_wpm = speed_wpm
        self.timeout_s = timeout_s

    def _argv(self) -> list[str]:
        # -b 1: stdin is UTF-8 whatever the locale (CI runs with none).
        argv = [self.executable, "--stdout", "-b", "1", "-v", self.voice]
        if self.speed_wpm:
            argv += ["-s", str(self.speed_wpm)]
        return argv

    async def synthesize(self, text: str) -> bytes:
        if not text.strip():
            raise TtsError("empty text")
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._argv(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as e:
            raise TtsError(f"cannot run {self.executable}: {e}") from e
        try:
            async with asyncio.timeout(self.timeout_s):
                out, err = await proc.communicate(text.encode("utf-8"))
        except BaseException as e:
            # Timed out or cancelled (barge-in): never leave the process behind.
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
            if isinstance(e, TimeoutError):
                raise TtsError(f"espeak-ng timed out after {self.timeout_s} s") from e
            raise
        if proc.returncode != 0:
            tail = err.decode("utf-8", "replace").strip()[-300:]
            raise TtsError(f"espeak-ng exited {proc.returncode}: {tail}")
        try:
            wav = parse_wav(out)
        except WavError as e:
            raise TtsError(f"espeak-ng output: {e}") from e
        if not wav.pcm:
            raise TtsError("espeak-ng produced no audio")
        if wav.sample_rate != self.sample_rate:
            return resample_pcm(wav.pcm, wav.sample_rate, self.sample_rate)
        return wav.pcm

    def __repr__(self) -> str:
        return f"EspeakSynthesizer({self.voice!r})"

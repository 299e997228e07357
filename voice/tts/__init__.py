"""Text-to-speech for phone calls: Piper out of process (GPL: never imported), espeak-ng
as fallback, a prompt cache at the call rate, sentence pipelining. See README.md here."""

from voice.tts.base import Language, Synthesizer, TtsError
from voice.tts.build import TtsStack, build_speaker
from voice.tts.cache import PromptCache, cache_key
from voice.tts.espeak import ESPEAK_VOICES, EspeakSynthesizer, espeak_path
from voice.tts.piper_http import (
    PiperHttpSynthesizer,
    PiperServer,
    piper_voice_id,
    read_piper_sample_rate,
)
from voice.tts.speaker import PrewarmStats, Speaker
from voice.tts.text import split_sentences, spoken_form
from voice.tts.wav import Wav, WavError, parse_wav, wav_bytes

__all__ = [
    "ESPEAK_VOICES",
    "EspeakSynthesizer",
    "Language",
    "PiperHttpSynthesizer",
    "PiperServer",
    "PrewarmStats",
    "PromptCache",
    "Speaker",
    "Synthesizer",
    "TtsError",
    "TtsStack",
    "Wav",
    "WavError",
    "build_speaker",
    "cache_key",
    "espeak_path",
    "parse_wav",
    "piper_voice_id",
    "read_piper_sample_rate",
    "split_sentences",
    "spoken_form",
    "wav_bytes",
]

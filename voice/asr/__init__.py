"""Speech input for phone calls: Vosk streaming recognition with per-prompt grammars.

See README.md in this folder. ``AsrModel`` is loaded once per process (in a thread),
``CallRecognizer`` is one per call (Kaldi work in a bounded thread pool),
``grammar_for`` turns a prompt's expectation into a grammar, ``normalise_digits`` turns
spoken digits into ASCII. ``Recogniser`` is what the call session depends on;
``ScriptedRecogniser`` is its test double.
"""

from voice.asr.grammar import (
    DIGIT_EXTRAS,
    KEY_WORDS,
    YES_NO_WORDS,
    grammar_for,
    label_words,
    normalise_digits,
)
from voice.asr.model import UNK, AsrModel, Vocabulary, asr_executor, read_word_list
from voice.asr.recognizer import (
    CallRecognizer,
    Recogniser,
    RecognizerStats,
    Transcript,
    Word,
)
from voice.asr.scripted import ScriptedRecogniser

__all__ = [
    "DIGIT_EXTRAS",
    "KEY_WORDS",
    "UNK",
    "YES_NO_WORDS",
    "AsrModel",
    "CallRecognizer",
    "Recogniser",
    "RecognizerStats",
    "ScriptedRecogniser",
    "Transcript",
    "Vocabulary",
    "Word",
    "asr_executor",
    "grammar_for",
    "label_words",
    "normalise_digits",
    "read_word_list",
]

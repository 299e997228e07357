"""Prometheus metrics of the phone channel (served with the bot's on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_FAST = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 0.8, 1, 2, 5)

CALLS_ACTIVE = Gauge("hotline_calls_active", "Calls in progress")
CALLS = Counter("hotline_calls_total", "Calls by how they ended", ["outcome"])
TURN_SECONDS = Histogram(
    "hotline_call_turn_seconds", "End of the caller's input to the first reply audio frame", ["input"], buckets=_FAST
)
DIALOGUE_SECONDS = Histogram(
    "hotline_call_dialogue_seconds", "One dialogue turn (Rasa and its actions) as a call sees it", buckets=_FAST
)
TTS_FIRST_AUDIO = Histogram("hotline_tts_first_audio_seconds", "Reply received to its first audio chunk", buckets=_FAST)
ASR_FINAL_SECONDS = Histogram("hotline_asr_final_seconds", "End of speech to the recogniser's final result", buckets=_FAST)
BARGE_INS = Counter("hotline_barge_ins_total", "Prompts interrupted by the caller", ["by"])
NO_INPUTS = Counter("hotline_no_inputs_total", "Prompts the caller did not answer in time")
NO_MATCHES = Counter("hotline_no_matches_total", "Speech the recogniser made nothing of")
HANDOFFS = Counter("hotline_call_handoffs_total", "Calls transferred to the operator queue", ["reason"])
DIALOGUE_FAILURES = Counter("hotline_call_dialogue_failures_total", "Calls cut short because Rasa or the action server was down")
OUTBOUND_CALLS = Counter("hotline_outbound_calls_total", "Calls the bot placed, by result", ["result"])
OUTBOUND_ACTIVE = Gauge("hotline_outbound_calls_active", "Outbound calls dialling or in progress")
OUTBOUND_REFUSED = Counter("hotline_outbound_calls_refused_total", "Outbound calls not placed", ["reason"])

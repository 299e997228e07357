"""A phone call as the bot runs it: one session per purpose over shared parts.

- ``media_session``: what every call shares — unicast media, the ESL event and audio
  pumps, one input queue (keys, speech, hang-up), playback with barge-in;
- ``handoff``: J1–J3, hold for a free seat and the bridge to the operator's phone;
- ``conversation``: the inbound call, the dialogue turn by turn (``CallSession``);
- ``outbound``: a call the bot placed, once answered (``OutboundCallSession``: the test call).
"""

from voice.call.conversation import APOLOGY, CallSession
from voice.call.handoff import (
    HOLD_OFFER,
    HandoffEnding,
    HandoffLine,
    HandoffSession,
    HoldStatus,
    hold_music,
)
from voice.call.media_session import (
    CallDeps,
    CallSettings,
    MediaSession,
    Outcome,
    RecogniserFactory,
    SpeechIn,
    SpeechOut,
)
from voice.call.outbound import OutboundCallSession, OutboundLine

__all__ = [
    "APOLOGY",
    "HOLD_OFFER",
    "CallDeps",
    "CallSession",
    "CallSettings",
    "HandoffEnding",
    "HandoffLine",
    "HandoffSession",
    "HoldStatus",
    "MediaSession",
    "OutboundCallSession",
    "OutboundLine",
    "Outcome",
    "RecogniserFactory",
    "SpeechIn",
    "SpeechOut",
    "hold_music",
]

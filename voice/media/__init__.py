"""Media for one call: the FreeSWITCH ``unicast`` UDP endpoint, typed L16 frames,
a drift-free real-time pacer and soxr resampling. See README.md in this folder."""

from voice.media.frames import (
    FILLER_BYTE,
    PCM_L16_DTYPE,
    AudioFormat,
    FrameAssembler,
    InboundFrame,
    dbfs,
    is_filler,
    rms,
    silence,
    split_into_frames,
)
from voice.media.pacing import Pacer, Tick
from voice.media.resample import StreamResampler, resample_pcm, resample_stream
from voice.media.unicast import (
    MediaCounters,
    NoFreePort,
    PlayResult,
    PortPool,
    UnicastConfig,
    UnicastEndpoint,
)

__all__ = [
    "FILLER_BYTE",
    "PCM_L16_DTYPE",
    "AudioFormat",
    "FrameAssembler",
    "InboundFrame",
    "MediaCounters",
    "NoFreePort",
    "Pacer",
    "PlayResult",
    "PortPool",
    "StreamResampler",
    "Tick",
    "UnicastConfig",
    "UnicastEndpoint",
    "dbfs",
    "is_filler",
    "resample_pcm",
    "resample_stream",
    "rms",
    "silence",
    "split_into_frames",
]

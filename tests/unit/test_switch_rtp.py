"""The real-switch tier's own RTP tools: G.711 as the standard says (checked against the
standard library's audioop, deprecated but still in 3.11), RFC 2833 key packets, and
pcaps that continue one stream."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.switch.rtp import (
    TELEPHONE_EVENT,
    RtpStream,
    alaw2lin,
    keys_packets,
    lin2alaw,
    lin2ulaw,
    ulaw2lin,
    write_pcap,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    audioop = pytest.importorskip("audioop")

SAMPLES = np.arange(-32768, 32768, 7, dtype=np.int32).astype(np.int16)


def test_mu_law_matches_the_standard() -> None:
    assert lin2ulaw(SAMPLES) == audioop.lin2ulaw(SAMPLES.tobytes(), 2)
    codes = bytes(range(256))
    assert ulaw2lin(codes).tobytes() == audioop.ulaw2lin(codes, 2)


def test_a_law_matches_the_standard() -> None:
    assert lin2alaw(SAMPLES) == audioop.lin2alaw(SAMPLES.tobytes(), 2)
    codes = bytes(range(256))
    assert alaw2lin(codes).tobytes() == audioop.alaw2lin(codes, 2)


def test_keys_are_events_with_growing_duration_and_three_end_packets() -> None:
    stream = RtpStream(ptime_ms=20)
    packets = keys_packets(stream, "00")
    events = [(struct.unpack("!H", p.rtp[2:4])[0], struct.unpack("!I", p.rtp[4:8])[0], p.rtp[12], p.rtp[13])
              for p in packets]
    assert all(p.rtp[1] & 0x7F == TELEPHONE_EVENT for p in packets)
    seqs = [e[0] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # one stream: repeated keys survive
    first, second = events[:8], events[8:]
    assert {e[1] for e in first} != {e[1] for e in second}  # a new timestamp per key
    assert [e[3] & 0x80 for e in first] == [0] * 5 + [0x80] * 3


def test_a_pcap_holds_udp_to_one_port_with_the_packets_times(tmp_path: Path) -> None:
    stream = RtpStream(codec="PCMU", ptime_ms=30)
    path = tmp_path / "k.pcap"
    length_ms = write_pcap(path, keys_packets(stream, "1#"), dst_port=6002)
    data = path.read_bytes()
    assert struct.unpack("<I", data[:4])[0] == 0xA1B2C3D4
    offset, times, ports = 24, [], set()
    while offset < len(data):
        sec, usec, incl, _ = struct.unpack("<IIII", data[offset:offset + 16])
        frame = data[offset + 16: offset + 16 + incl]
        ports.add(struct.unpack("!H", frame[14 + 20 + 2: 14 + 20 + 4])[0])
        times.append(sec + usec / 1e6)
        offset += 16 + incl
    assert ports == {6002}
    assert times == sorted(times) and round((times[-1] - times[0]) * 1000) == round(length_ms)

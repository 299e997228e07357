"""RTP for SIPp callers: G.711 encoding, pcap files SIPp plays (``play_pcap_audio``),
RFC 2833 key presses, and a sniffer that hears what the caller receives.

SIPp replays a pcap's UDP payloads as they are (it rewrites only addresses and ports),
so every pcap of one call continues the call's RTP sequence numbers and timestamps:
FreeSWITCH tells RFC 2833 key presses apart by their timestamps.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PCMU, PCMA, TELEPHONE_EVENT = 0, 8, 101
CODEC_PT = {"PCMU": PCMU, "PCMA": PCMA}
DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}


# ---- G.711 (ITU-T G.711, the segment tables written out as arithmetic) ----

def lin2ulaw(pcm: np.ndarray) -> bytes:
    x14 = pcm.astype(np.int32) >> 2  # 14-bit, as G.711's reference code works
    negative = x14 < 0
    mag = np.minimum(np.where(negative, -x14, x14), 8159) + 0x21
    segment = np.floor(np.log2(mag)).astype(np.int32) - 5
    code = np.where(segment >= 8, 0x7F, (segment << 4) | ((mag >> (segment + 1)) & 0x0F))  # past the top: clipped
    return (code ^ np.where(negative, 0x7F, 0xFF)).astype(np.uint8).tobytes()


def ulaw2lin(data: bytes) -> np.ndarray:
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    exponent, mantissa = (u >> 4) & 0x07, u & 0x0F
    mag = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(u & 0x80, -mag, mag).astype(np.int16)


def lin2alaw(pcm: np.ndarray) -> bytes:
    x = pcm.astype(np.int32) >> 3  # 13-bit
    sign = np.where(x >= 0, 0x80, 0)
    mag = np.minimum(np.where(x >= 0, x, -x - 1), 0x0FFF)
    exponent = np.where(mag < 32, 0, np.floor(np.log2(np.maximum(mag, 1))).astype(np.int32) - 4)
    mantissa = np.where(exponent == 0, mag >> 1, mag >> exponent) & 0x0F
    return ((sign | (exponent << 4) | mantissa) ^ 0x55).astype(np.uint8).tobytes()


def alaw2lin(data: bytes) -> np.ndarray:
    a = np.frombuffer(data, dtype=np.uint8).astype(np.int32) ^ 0x55
    exponent, mantissa = (a >> 4) & 0x07, a & 0x0F
    mag = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1))
    return np.where(a & 0x80, mag, -mag).astype(np.int16)


def decode(pt: int, payload: bytes) -> np.ndarray | None:
    if pt == PCMU:
        return ulaw2lin(payload)
    if pt == PCMA:
        return alaw2lin(payload)
    return None


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0


# ---- pcap files ----

@dataclass
class RtpStream:
    """One call's outgoing RTP state, carried across the pcaps it is played from."""

    codec: str = "PCMA"
    ptime_ms: int = 20
    ssrc: int = 0x5A17C0DE
    seq: int = 1000
    ts: int = 160_000

    @property
    def samples(self) -> int:
        return 8 * self.ptime_ms

    def audio(self, pcm16: np.ndarray) -> list[bytes]:
        """RTP packets of 8 kHz 16-bit audio, one per ptime."""
        encode = lin2alaw if self.codec == "PCMA" else lin2ulaw
        n = self.samples
        padded = np.concatenate([pcm16, np.zeros((-len(pcm16)) % n, dtype=np.int16)])
        out = []
        for i in range(0, len(padded), n):
            out.append(self._packet(CODEC_PT[self.codec], encode(padded[i:i + n]), marker=i == 0))
            self.ts += n
        return out

    def silence(self, ms: int) -> list[bytes]:
        return self.audio(np.zeros(8 * ms, dtype=np.int16))

    def key(self, digit: str, duration_ms: int = 100) -> list[bytes]:
        """RFC 2833 (RFC 4733) packets of one key: one timestamp for the whole event, its
        duration growing each ptime, the end packet sent three times."""
        event = DTMF_EVENTS[digit]
        start_ts, n_packets = self.ts, max(1, duration_ms // self.ptime_ms)
        out = []
        for i in range(n_packets):
            dur = (i + 1) * self.samples
            out.append(self._packet(TELEPHONE_EVENT, struct.pack("!BBH", event, 10, dur), marker=i == 0, ts=start_ts))
        end = struct.pack("!BBH", event, 0x80 | 10, n_packets * self.samples)
        out += [self._packet(TELEPHONE_EVENT, end, ts=start_ts) for _ in range(3)]
        self.ts += n_packets * self.samples
        return out

    def _packet(self, pt: int, payload: bytes, *, marker: bool = False, ts: int | None = None) -> bytes:
        header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, self.seq & 0xFFFF,
                             (self.ts if ts is None else ts) & 0xFFFFFFFF, self.ssrc)
        self.seq += 1
        return header + payload


@dataclass
class Timed:
    """A packet and when it leaves, in ms from the start of its pcap."""

    at_ms: float
    rtp: bytes


def keys_packets(stream: RtpStream, digits: str, gap_ms: int = 120) -> list[Timed]:
    out: list[Timed] = []
    t = 0.0
    for digit in digits:
        packets = stream.key(digit)
        for i, pkt in enumerate(packets):
            # the three end packets leave together, after the event's last update
            out.append(Timed(t + min(i, len(packets) - 3) * stream.ptime_ms, pkt))
        t += (len(packets) - 2) * stream.ptime_ms + gap_ms
        stream.ts += 8 * gap_ms
    return out


def audio_packets(stream: RtpStream, pcm16: np.ndarray) -> list[Timed]:
    return [Timed(i * stream.ptime_ms, pkt) for i, pkt in enumerate(stream.audio(pcm16))]


def write_pcap(path: Path, packets: Iterable[Timed], src_port: int = 6000, dst_port: int = 6002) -> float:
    """An Ethernet/IPv4/UDP pcap of the packets; returns its length in ms."""
    last = 0.0
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for p in packets:
            udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(p.rtp), 0) + p.rtp
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                             socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1"))
            ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
            frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
            sec, usec = divmod(int(p.at_ms * 1000), 1_000_000)
            f.write(struct.pack("<IIII", 1_700_000_000 + sec, usec, len(frame), len(frame)) + frame)
            last = max(last, p.at_ms)
    return last


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack("!10H", header))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


# ---- what the caller hears ----

@dataclass
class Heard:
    at: float  # time.monotonic()
    pt: int
    seq: int
    level: float  # RMS of the decoded payload (0 for telephone-events)


@dataclass
class RtpSniffer:
    """Every RTP packet sent to a UDP port on loopback, as a packet socket sees it (root
    only: SIPp keeps the port itself, so nothing else can read it)."""

    port: int
    packets: list[Heard] = field(default_factory=list)
    sent_keys: list[float] = field(default_factory=list)  # our own RFC 2833 packets leaving the port
    source_port: int | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @staticmethod
    def available() -> bool:
        try:
            socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003)).close()
        except (PermissionError, AttributeError, OSError):
            return False
        return True

    def start(self) -> None:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        sock.bind(("lo", 0))
        sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._run, args=(sock,), daemon=True, name=f"rtp-sniff-{self.port}")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    def _run(self, sock: socket.socket) -> None:
        with sock:
            while not self._stop.is_set():
                try:
                    frame, addr = sock.recvfrom(65535)
                except TimeoutError:
                    continue
                if addr[2] == socket.PACKET_OUTGOING:  # loopback shows each packet twice
                    continue
                self._take(frame, time.monotonic())

    def _take(self, frame: bytes, now: float) -> None:
        if len(frame) < 14 + 20 + 8 + 12 or frame[12:14] != b"\x08\x00" or frame[14 + 9] != 17:
            return
        ihl = (frame[14] & 0x0F) * 4
        udp = 14 + ihl
        sport, dport = struct.unpack("!HH", frame[udp:udp + 4])
        rtp = frame[udp + 8:]
        if rtp[0] >> 6 != 2:
            return
        pt, seq = rtp[1] & 0x7F, struct.unpack("!H", rtp[2:4])[0]
        if sport == self.port and pt == TELEPHONE_EVENT:
            self.sent_keys.append(now)
            return
        if dport != self.port:
            return
        self.source_port = sport
        pcm = decode(pt, rtp[12:])
        self.packets.append(Heard(now, pt, seq, rms(pcm) if pcm is not None else 0.0))

    # -- questions a test asks --
    def loud(self, since: float = 0.0, level: float = 300.0) -> list[Heard]:
        return [p for p in list(self.packets) if p.at >= since and p.level >= level]

    def first_loud_after(self, since: float, level: float = 300.0) -> float | None:
        hits = self.loud(since, level)
        return hits[0].at if hits else None

    def last_loud(self, level: float = 300.0) -> float | None:
        for p in reversed(list(self.packets)):
            if p.level >= level:
                return p.at
        return None

    def loud_seconds(self, since: float, until: float, level: float = 300.0, ptime_ms: int = 20) -> float:
        return sum(1 for p in self.packets if since <= p.at < until and p.level >= level) * ptime_ms / 1000


def main(argv: list[str] | None = None) -> int:
    """Write pcaps for SIPp's ``play_pcap_audio``: ``keys 057187650001# keys.pcap`` (RFC 2833,
    one continuing stream, so repeated digits survive) or ``speech in.wav speech.pcap``
    (8 kHz mono 16-bit WAV → G.711)."""
    import argparse
    import wave

    parser = argparse.ArgumentParser(prog="python -m tests.switch.rtp", description=main.__doc__)
    parser.add_argument("kind", choices=["keys", "speech"])
    parser.add_argument("source", help="the keys (0-9 * #), or a WAV file")
    parser.add_argument("pcap", type=Path)
    parser.add_argument("--codec", choices=sorted(CODEC_PT), default="PCMA")
    parser.add_argument("--ptime", type=int, choices=[20, 30], default=20)
    args = parser.parse_args(argv)
    stream = RtpStream(codec=args.codec, ptime_ms=args.ptime)
    if args.kind == "keys":
        bad = set(args.source) - set(DTMF_EVENTS)
        if bad:
            parser.error(f"not keys: {''.join(sorted(bad))}")
        packets = keys_packets(stream, args.source)
    else:
        with wave.open(args.source) as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (8000, 1, 2):
                parser.error("the WAV must be 8 kHz, mono, 16-bit")
            packets = audio_packets(stream, np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"))
    ms = write_pcap(args.pcap, packets)
    print(f"{args.pcap}: {len(packets)} packets, {ms:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

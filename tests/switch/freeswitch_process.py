"""A real FreeSWITCH for the real-switch tier: found, started with this repository's
``freeswitch/`` tree, and stopped.

Where the binary comes from, in order: ``HOTLINE_FREESWITCH_BIN``; ``freeswitch`` on
PATH; the build in ``../shared/freeswitch/`` (a tarball), unpacked once into a cache
folder. Each started switch differs from what a user runs only in what a user would set
anyway: the environment variables ``freeswitch/README.md`` documents (ports moved to free
ones, loopback addresses, passwords) and its own log/db/recordings folders.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = REPO_ROOT / "freeswitch"
SHARED_BUILDS = REPO_ROOT.parent / "shared" / "freeswitch"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hotline" / "freeswitch"
HOW_TO_GET_ONE = (
    "no FreeSWITCH found: set HOTLINE_FREESWITCH_BIN to a freeswitch binary, put freeswitch on PATH, "
    "or place a build tarball (freeswitch-*.tar.xz, as in ../shared/freeswitch/README.md) in ../shared/freeswitch/"
)


@dataclass(frozen=True)
class FreeswitchBuild:
    binary: Path
    modules: Path | None  # None: the binary's own compiled-in module folder
    lib: Path | None  # for LD_LIBRARY_PATH (a relocated build)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.lib is not None:
            env["LD_LIBRARY_PATH"] = f"{self.lib}:{env['LD_LIBRARY_PATH']}" if env.get("LD_LIBRARY_PATH") else str(self.lib)
        return env


def find_freeswitch() -> FreeswitchBuild | None:
    explicit = os.environ.get("HOTLINE_FREESWITCH_BIN")
    if explicit:
        return _build_around(Path(explicit))
    on_path = shutil.which("freeswitch")
    if on_path:
        return FreeswitchBuild(Path(on_path), None, None)
    tarballs = sorted(SHARED_BUILDS.glob("freeswitch-*.tar.xz")) if SHARED_BUILDS.is_dir() else []
    return _unpacked(tarballs[-1]) if tarballs else None


def _build_around(binary: Path) -> FreeswitchBuild:
    """A binary inside an unpacked build (bin/, lib/, mod/) gets that build's folders."""
    root = binary.resolve().parent.parent
    mod, lib = root / "mod", root / "lib"
    return FreeswitchBuild(binary, mod if mod.is_dir() else None, lib if (lib / "libfreeswitch.so").exists()
                           or any(lib.glob("libfreeswitch.so*")) else None)


def _unpacked(tarball: Path) -> FreeswitchBuild:
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()[:16]
    dest = CACHE_DIR / f"{tarball.name.removesuffix('.tar.xz')}-{digest}"
    binary = dest / "freeswitch" / "bin" / "freeswitch"
    if not binary.exists():
        # One partial folder per process: two test processes may unpack at once.
        partial = dest.with_name(f"{dest.name}.partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with tarfile.open(tarball) as tar:
            tar.extractall(partial, filter="tar")
        if not binary.exists():
            shutil.rmtree(dest, ignore_errors=True)
            with contextlib.suppress(OSError):  # another process put its whole unpack there first
                partial.rename(dest)  # whole or not at all: a cut unpack is never taken for a build
        shutil.rmtree(partial, ignore_errors=True)
    return _build_around(binary)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP (SIP profiles bind both)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port for SIP")


@dataclass
class FreeswitchPorts:
    internal_sip: int = field(default_factory=free_udp_tcp_port)
    external_sip: int = field(default_factory=free_udp_tcp_port)
    esl: int = field(default_factory=free_port)
    rtp_start: int = 0
    rtp_end: int = 0


class FreeswitchProcess:
    """One FreeSWITCH, in the foreground (``-nf``) so its pid is ours to stop."""

    ESL_PASSWORD = "switch-tier-esl"
    OPERATOR_PASSWORD = "switch-tier-operator"

    def __init__(self, build: FreeswitchBuild, workdir: Path, *, bot_esl_port: int, rtp_range: tuple[int, int],
                 extra_env: dict[str, str] | None = None) -> None:
        self.build = build
        self.workdir = workdir
        self.ports = FreeswitchPorts(rtp_start=rtp_range[0], rtp_end=rtp_range[1])
        self.bot_esl_port = bot_esl_port
        self.recordings = workdir / "recordings"
        self.log_file = workdir / "log" / "freeswitch.log"
        self.extra_env = extra_env or {}
        self._proc: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        env = self.build.env()
        env.update({
            "HOTLINE_ESL_PASSWORD": self.ESL_PASSWORD,
            "HOTLINE_ESL_HOST": "127.0.0.1",
            "HOTLINE_ESL_PORT": str(self.bot_esl_port),
            "HOTLINE_FS_ESL_LISTEN_IP": "127.0.0.1",
            "HOTLINE_FS_ESL_LISTEN_PORT": str(self.ports.esl),
            "HOTLINE_FS_SIP_IP": "127.0.0.1",
            "HOTLINE_FS_EXTERNAL_IP": "127.0.0.1",
            "HOTLINE_FS_DOMAIN": "127.0.0.1",
            "HOTLINE_FS_INTERNAL_SIP_PORT": str(self.ports.internal_sip),
            "HOTLINE_FS_EXTERNAL_SIP_PORT": str(self.ports.external_sip),
            "HOTLINE_FS_RTP_START_PORT": str(self.ports.rtp_start),
            "HOTLINE_FS_RTP_END_PORT": str(self.ports.rtp_end),
            "HOTLINE_FS_LOG_LEVEL": "info",
            **{f"HOTLINE_FS_OPERATOR_PASSWORD_{n}": self.OPERATOR_PASSWORD
               for n in ("2001", "2002", "2003", "2004", "3001", "3002")},
        })
        env.update(self.extra_env)
        return env

    def start(self, timeout_s: float = 30.0) -> None:
        dirs = {name: self.workdir / name for name in ("log", "db", "run", "storage", "cache", "sounds", "temp")}
        for d in [*dirs.values(), self.recordings]:
            d.mkdir(parents=True, exist_ok=True)
        cmd = [str(self.build.binary), "-nc", "-nonat", "-nf", "-conf", str(CONF_DIR),
               "-log", str(dirs["log"]), "-db", str(dirs["db"]), "-run", str(dirs["run"]),
               "-temp", str(dirs["temp"]), "-recordings", str(self.recordings), "-storage", str(dirs["storage"]),
               "-cache", str(dirs["cache"]), "-sounds", str(dirs["sounds"])]
        if self.build.modules is not None:
            cmd[1:1] = ["-mod", str(self.build.modules)]
        out = (self.workdir / "stdout.log").open("wb")
        self._proc = subprocess.Popen(cmd, env=self.environment(), stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"FreeSWITCH exited ({self._proc.returncode}): {self.log_tail()}")
            if self._sip_ready():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"FreeSWITCH did not come up in {timeout_s} s: {self.log_tail()}")

    def _sip_ready(self) -> bool:
        if not self.log_file.exists():
            return False
        text = self.log_file.read_text(errors="replace")
        return "FreeSWITCH Started" in text and text.count("Started") >= 1 and _tcp_open(self.ports.esl)

    def log_tail(self, chars: int = 4000) -> str:
        for path in (self.log_file, self.workdir / "stdout.log"):
            if path.exists():
                return path.read_text(errors="replace")[-chars:]
        return "(no log)"

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        os.killpg(self._proc.pid, signal.SIGTERM)
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(5)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False

"""`models fetch` against a local aiohttp file server: fresh install, resume with Range,
a server that ignores Range, a broken connection, checksum mismatch, an unsafe zip,
skipping what is installed, and the command line's messages and exit codes.
The archives are built here from random bytes; nothing binary is committed.
Category: integration (loopback HTTP in a thread; no internet)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import random
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from typer.testing import CliRunner

from bot.cli import app
from bot.models_fetch import (
    DOWNLOADS,
    MARKER_NAME,
    ArchiveError,
    DownloadError,
    FetchResult,
    ModelEntry,
    VerifyError,
    fetch_models,
    find_model,
    installed_models,
    parse_manifest,
    read_marker,
)

VOSK = "vosk-model-test-zh"
VOICE = "zh_CN-test-medium"


# --- a file server that records what it was asked --------------------------------------


@dataclass
class Served:
    data: bytes
    ignore_range: bool = False
    cut_after: int | None = None  # the next response breaks off after this many bytes


@dataclass
class Seen:
    name: str
    range: str | None
    status: int
    sent: int


@dataclass
class FileServer:
    base: str = ""
    files: dict[str, Served] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"{self.base}/files/{name}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        rng = request.headers.get("Range")
        served = self.files.get(name)
        if served is None:
            self.seen.append(Seen(name, rng, 404, 0))
            raise web.HTTPNotFound()
        start, status = 0, 200
        if rng and not served.ignore_range:
            start, status = int(rng.removeprefix("bytes=").split("-")[0]), 206
        body = served.data[start:]
        resp = web.StreamResponse(status=status)
        resp.content_length = len(body)
        resp.headers["Accept-Ranges"] = "bytes"
        if status == 206:
            resp.headers["Content-Range"] = f"bytes {start}-{len(served.data) - 1}/{len(served.data)}"
        await resp.prepare(request)
        if served.cut_after is not None:
            cut, served.cut_after = served.cut_after, None
            await resp.write(body[:cut])
            self.seen.append(Seen(name, rng, status, cut))
            assert request.transport is not None
            request.transport.close()  # the connection drops mid-transfer
            return resp
        await resp.write(body)
        await resp.write_eof()
        self.seen.append(Seen(name, rng, status, len(body)))
        return resp


@pytest.fixture
def server() -> Iterator[FileServer]:
    # In a thread with its own loop, so the CLI (which runs asyncio.run) can reach it too.
    srv = FileServer()
    web_app = web.Application()
    web_app.router.add_get("/files/{name}", srv.handle)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(web_app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    srv.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# --- test artefacts ----------------------------------------------------------------------


def noise(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def vosk_zip(top: str = VOSK, extra: dict[str, bytes] | None = None) -> bytes:
    """A zip laid out as Vosk's are: one top folder holding am/, conf/, graph/."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{top}/", b"")
        zf.writestr(f"{top}/am/final.mdl", noise(1_500_000, 1))  # > one write batch
        zf.writestr(f"{top}/conf/model.conf", b"--sample-frequency=16000\n")
        zf.writestr(f"{top}/graph/words.txt", "你好 1\n障碍 2\n".encode())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


ONNX = noise(300_000, 2)
ONNX_JSON = json.dumps({"audio": {"sample_rate": 22050}, "espeak": {"voice": "cmn"}}).encode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_entry(url: str, data: bytes, fmt: str = "file", **over: Any) -> dict[str, Any]:
    return {"url": url, "sha256": sha(data), "size": len(data), "format": fmt} | over


def write_manifest(path: Path, models: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"version": 1, "models": models}), encoding="utf-8")
    return path


def vosk_model(url: str, data: bytes, **file_over: Any) -> dict[str, Any]:
    return {
        "name": VOSK,
        "kind": "vosk",
        "language": "zh",
        "default": True,
        "licence": "Apache-2.0",
        "files": [file_entry(url, data, "zip", **file_over)],
    }


def piper_model(server: FileServer) -> dict[str, Any]:
    return {
        "name": VOICE,
        "kind": "piper",
        "language": "zh",
        "default": True,
        "licence": "test",
        "files": [
            file_entry(server.url(f"{VOICE}.onnx"), ONNX),
            file_entry(server.url(f"{VOICE}.onnx.json"), ONNX_JSON),
        ],
    }


def entries(models: list[dict[str, Any]]) -> list[ModelEntry]:
    return parse_manifest(yaml.safe_dump({"version": 1, "models": models})).models


def fetch(models: list[dict[str, Any]], models_dir: Path) -> list[FetchResult]:
    return asyncio.run(fetch_models(entries(models), models_dir))


@pytest.fixture
def zipped(server: FileServer) -> bytes:
    data = vosk_zip()
    server.files["model.zip"] = Served(data)
    return data


def part_path(models_dir: Path, kind: str, name: str, filename: str) -> Path:
    return models_dir / kind / DOWNLOADS / name / f"{filename}.part"


def leftovers(models_dir: Path) -> list[str]:
    """Download and staging debris: none may remain after a successful install."""
    return sorted(
        str(p.relative_to(models_dir))
        for p in models_dir.rglob("*")
        if p.name.startswith((".staging-", ".old-", DOWNLOADS)) or p.suffix == ".part"
    )


# --- the library ---------------------------------------------------------------------------


def test_fresh_download_verifies_unpacks_and_writes_marker(
    server: FileServer, zipped: bytes, tmp_path: Path
) -> None:
    server.files[f"{VOICE}.onnx"] = Served(ONNX)
    server.files[f"{VOICE}.onnx.json"] = Served(ONNX_JSON)
    models_dir = tmp_path / "models"

    results = fetch([vosk_model(server.url("model.zip"), zipped), piper_model(server)], models_dir)

    assert [(r.name, r.status, r.warnings) for r in results] == [
        (VOSK, "installed", []),
        (VOICE, "installed", []),
    ]
    vosk_dir = models_dir / "vosk" / VOSK
    # The zip's top folder is stripped: the model's files sit directly in vosk/<name>/.
    assert (vosk_dir / "am" / "final.mdl").read_bytes() == noise(1_500_000, 1)
    assert (vosk_dir / "graph" / "words.txt").read_text(encoding="utf-8").startswith("你好")
    assert not (vosk_dir / VOSK).exists()
    voice_dir = models_dir / "piper" / VOICE
    assert (voice_dir / f"{VOICE}.onnx").read_bytes() == ONNX
    assert (voice_dir / f"{VOICE}.onnx.json").read_bytes() == ONNX_JSON

    marker = json.loads((vosk_dir / MARKER_NAME).read_text(encoding="utf-8"))
    assert marker["name"] == VOSK and marker["kind"] == "vosk" and marker["language"] == "zh"
    assert marker["files"][0]["sha256"] == sha(zipped)
    assert marker["files"][0]["checksum_in_manifest"] is True
    assert installed_models(models_dir) == {VOSK: vosk_dir, VOICE: voice_dir}
    assert find_model(models_dir, "vosk", "zh") == vosk_dir
    assert find_model(models_dir, "piper", "zh") == voice_dir
    assert find_model(models_dir, "vosk", "en") is None
    assert leftovers(models_dir) == []
    assert [(s.name, s.range, s.status) for s in server.seen] == [
        ("model.zip", None, 200),
        (f"{VOICE}.onnx", None, 200),
        (f"{VOICE}.onnx.json", None, 200),
    ]


def test_resumes_a_partial_download_with_a_range_request(
    server: FileServer, zipped: bytes, tmp_path: Path
) -> None:
    models_dir = tmp_path / "models"
    part = part_path(models_dir, "vosk", VOSK, "model.zip")
    part.parent.mkdir(parents=True)
    part.write_bytes(zipped[:600_000])

    [result] = fetch([vosk_model(server.url("model.zip"), zipped)], models_dir)

    assert result.status == "installed", result.error
    [seen] = server.seen
    assert (seen.range, seen.status, seen.sent) == ("bytes=600000-", 206, len(zipped) - 600_000)
    assert read_marker(models_dir / "vosk" / VOSK) is not None
    assert leftovers(models_dir) == []


def test_a_broken_connection_keeps_the_part_and_the_next_run_resumes(
    server: FileServer, zipped: bytes, tmp_path: Path
) -> None:
    server.files["model.zip"].cut_after = 700_000
    models_dir = tmp_path / "models"
    model = vosk_model(server.url("model.zip"), zipped)

    [first] = fetch([model], models_dir)

    assert first.status == "failed" and isinstance(first.error, DownloadError)
    part = part_path(models_dir, "vosk", VOSK, "model.zip")
    kept = part.stat().st_size
    assert 0 < kept <= 700_000 and part.read_bytes() == zipped[:kept]
    assert not (models_dir / "vosk" / VOSK).exists()

    [second] = fetch([model], models_dir)

    assert second.status == "installed", second.error
    assert server.seen[-1].range == f"bytes={kept}-" and server.seen[-1].status == 206
    assert leftovers(models_dir) == []


def test_a_server_ignoring_range_restarts_from_zero(
    server: FileServer, zipped: bytes, tmp_path: Path
) -> None:
    server.files["model.zip"].ignore_range = True
    models_dir = tmp_path / "models"
    part = part_path(models_dir, "vosk", VOSK, "model.zip")
    part.parent.mkdir(parents=True)
    # Wrong bytes: appending the full body to them would fail the checksum.
    part.write_bytes(b"\0" * 500_000)

    [result] = fetch([vosk_model(server.url("model.zip"), zipped)], models_dir)

    assert result.status == "installed", result.error
    [seen] = server.seen
    assert (seen.range, seen.status, seen.sent) == ("bytes=500000-", 200, len(zipped))
    assert (models_dir / "vosk" / VOSK / "am" / "final.mdl").read_bytes() == noise(1_500_000, 1)


def test_checksum_mismatch_deletes_the_download_and_installs_nothing(
    server: FileServer, zipped: bytes, tmp_path: Path
) -> None:
    models_dir = tmp_path / "models"
    wrong = sha(b"not the model")

    [result] = fetch([vosk_model(server.url("model.zip"), zipped, sha256=wrong)], models_dir)

    assert result.status == "failed" and isinstance(result.error, VerifyError)
    assert "checksum mismatch" in str(result.error) and wrong in str(result.error)
    assert sha(zipped) in str(result.error)
    assert not part_path(models_dir, "vosk", VOSK, "model.zip").exists()
    assert not (models_dir / "vosk" / VOSK).exists()
    assert installed_models(models_dir) == {}
    assert leftovers(models_dir) == []


def test_a_size_the_server_contradicts_fails_before_downloading(
    server: FileServer, zipped: bytes, tmp_path: Path
) -> None:
    models_dir = tmp_path / "models"
    model = vosk_model(server.url("model.zip"), zipped, size=len(zipped) + 10)

    [result] = fetch([model], models_dir)

    assert result.status == "failed" and isinstance(result.error, VerifyError)
    assert f"the server has {len(zipped)} bytes" in str(result.error)
    assert not part_path(models_dir, "vosk", VOSK, "model.zip").exists()


def test_a_zip_member_escaping_the_target_is_rejected(server: FileServer, tmp_path: Path) -> None:
    evil = vosk_zip(extra={"../evil.txt": b"pwned"})
    server.files["evil.zip"] = Served(evil)
    models_dir = tmp_path / "models"

    [result] = fetch([vosk_model(server.url("evil.zip"), evil)], models_dir)

    assert result.status == "failed" and isinstance(result.error, ArchiveError)
    assert "unsafe member '../evil.txt'" in str(result.error)
    assert list(tmp_path.rglob("evil.txt")) == []
    assert not (models_dir / "vosk" / VOSK).exists()
    assert leftovers(models_dir) == []


def test_an_installed_model_is_skipped_without_a_request(
    server: FileServer, zipped: bytes, tmp_path: Path
) -> None:
    models_dir = tmp_path / "models"
    model = vosk_model(server.url("model.zip"), zipped)
    assert fetch([model], models_dir)[0].status == "installed"
    server.seen.clear()

    [again] = fetch([model], models_dir)

    assert again.status == "up_to_date" and server.seen == []


def test_a_changed_manifest_entry_is_fetched_again(server: FileServer, tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    old, new = vosk_zip(), vosk_zip(extra={f"{VOSK}/README": b"v2"})
    server.files["old.zip"], server.files["new.zip"] = Served(old), Served(new)
    assert fetch([vosk_model(server.url("old.zip"), old)], models_dir)[0].status == "installed"

    [result] = fetch([vosk_model(server.url("new.zip"), new)], models_dir)

    assert result.status == "installed"
    assert (models_dir / "vosk" / VOSK / "README").read_bytes() == b"v2"
    assert leftovers(models_dir) == []


def test_without_a_checksum_the_size_is_verified_with_a_warning(
    server: FileServer, zipped: bytes, tmp_path: Path
) -> None:
    models_dir = tmp_path / "models"

    [result] = fetch([vosk_model(server.url("model.zip"), zipped, sha256=None)], models_dir)

    assert result.status == "installed"
    assert result.warnings == [
        f"the manifest has no checksum for model.zip; only its size ({len(zipped)} bytes) was checked"
    ]
    marker = read_marker(models_dir / "vosk" / VOSK)
    assert marker is not None and marker.files[0].checksum_in_manifest is False
    assert marker.files[0].sha256 == sha(zipped)  # recorded all the same


# --- the command line ------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["models", *args])


def test_cli_network_failure_is_one_clear_line_per_model_without_traceback(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{closed_port()}"
    model = vosk_model(f"{base}/model.zip", b"x")
    voice = {**model, "name": VOICE, "kind": "piper", "files": [
        file_entry(f"{base}/v.onnx", b"x"), file_entry(f"{base}/v.onnx.json", b"x")
    ]}
    manifest = write_manifest(tmp_path / "manifest.yml", [model, voice])

    result = run("fetch", "--manifest", str(manifest), "--models-dir", str(tmp_path / "models"))

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # typer.Exit, not a crash
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert errors[0].startswith(f"error: {VOSK} could not be downloaded: {base}/model.zip: cannot connect")
    assert "keypad-only" in errors[0]
    assert errors[1].startswith(f"error: {VOICE} could not be downloaded") and "espeak-ng" in errors[1]


def test_cli_fetch_then_list_then_up_to_date(server: FileServer, zipped: bytes, tmp_path: Path) -> None:
    english = vosk_model(server.url("en.zip"), b"never fetched") | {
        "name": "vosk-model-test-en",
        "language": "en",
        "default": False,
    }
    manifest = write_manifest(tmp_path / "manifest.yml", [vosk_model(server.url("model.zip"), zipped), english])
    models_dir = tmp_path / "models"
    opts = ["--manifest", str(manifest), "--models-dir", str(models_dir)]

    fetched = run("fetch", *opts)

    assert fetched.exit_code == 0, fetched.output
    assert f"{VOSK}: installed in {models_dir / 'vosk' / VOSK}" in fetched.stdout
    assert [s.name for s in server.seen] == ["model.zip"]  # defaults only

    listed = run("list", *opts)

    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    assert "installed" in rows[VOSK] and " yes " in rows[VOSK] and "Apache-2.0" in rows[VOSK]
    assert "not installed" in rows["vosk-model-test-en"]
    assert rows["NAME"].split() == ["NAME", "KIND", "LANG", "DEFAULT", "SIZE", "STATUS", "LICENCE"]

    again = run("fetch", *opts)

    assert again.exit_code == 0 and f"{VOSK}: up to date" in again.stdout
    assert len(server.seen) == 1


def test_cli_warns_when_the_manifest_has_no_checksum(
    server: FileServer, zipped: bytes, tmp_path: Path
) -> None:
    manifest = write_manifest(
        tmp_path / "manifest.yml", [vosk_model(server.url("model.zip"), zipped, sha256=None)]
    )

    result = run("fetch", "--manifest", str(manifest), "--models-dir", str(tmp_path / "models"))

    assert result.exit_code == 0
    assert f"warning: {VOSK}: the manifest has no checksum for model.zip" in result.stderr
    listed = run("list", "--manifest", str(manifest), "--models-dir", str(tmp_path / "models"))
    assert "installed (no checksum)" in listed.stdout


def test_cli_unknown_model_name_and_bad_manifest(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "manifest.yml", [vosk_model("http://127.0.0.1:9/m.zip", b"x")])

    unknown = run("fetch", "nope", "--manifest", str(manifest), "--models-dir", str(tmp_path))
    assert unknown.exit_code == 2 and "no model 'nope'" in unknown.stderr and VOSK in unknown.stderr

    (tmp_path / "bad.yml").write_text("version: 1\nmodels: [{name: x}]\n", encoding="utf-8")
    bad = run("list", "--manifest", str(tmp_path / "bad.yml"))
    assert bad.exit_code == 2 and "models.0.kind" in bad.stderr and "Traceback" not in bad.output
    assert sorted(os.listdir(tmp_path)) == ["bad.yml", "manifest.yml"]  # nothing was created


def test_a_local_write_failure_is_reported_not_raised(server: FileServer, zipped: bytes, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "models"
    not_a_folder.write_text("a file where the models folder should be", encoding="utf-8")

    [result] = fetch([vosk_model(server.url("model.zip"), zipped)], not_a_folder)

    assert result.status == "failed" and "cannot write under" in str(result.error)
    assert server.seen == []

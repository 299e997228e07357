"""Speech models (Vosk ASR, Piper TTS): the committed manifest (`models/manifest.yml`),
what is installed, and `python -m bot models fetch [NAME…]` / `python -m bot models list`.

Per file: resume a `.part` download with an HTTP Range request (a server that answers
200 instead of 206 restarts it from zero), stop at the size the manifest gives, and
check SHA-256 before anything is unpacked. Per model: unpack into a staging folder next
to the target, write a marker (`.hotline-model.json`), then rename the folder into
place, so a model folder is either complete and verified or absent. The voice service
calls `installed_models` / `find_model` at start-up: one small read per model.
Blocking file and zip work runs in threads.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import posixpath
import shutil
import stat
import tempfile
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Literal
from urllib.parse import unquote, urlsplit

import aiohttp
import structlog
import typer
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.settings import REPO_ROOT

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

log = structlog.get_logger(__name__)

DEFAULT_MODELS_DIR = REPO_ROOT / "models"
DEFAULT_MANIFEST = DEFAULT_MODELS_DIR / "manifest.yml"
MARKER_NAME = ".hotline-model.json"
DOWNLOADS = ".downloads"

Kind = Literal["vosk", "piper"]
Language = Literal["zh", "en"]
FileFormat = Literal["zip", "file"]

# --- the manifest ---------------------------------------------------------------------

_SHA256_HEX = "0123456789abcdef"


class ManifestError(Exception):
    """The manifest cannot be read or does not validate; the message says where."""


class ModelFile(BaseModel):
    """One file to download. `zip` is unpacked into the model's folder; `file` is placed
    there under `filename` (default: the last part of the URL path)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    # None when nobody has published one we could check: then only the size is verified
    # and fetch warns about it.
    sha256: str | None
    size: int = Field(gt=0, description="bytes")
    format: FileFormat = "file"
    filename: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {url!r}")
        return url

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, digest: str | None) -> str | None:
        if digest is None:
            return None
        digest = digest.strip().lower()
        if len(digest) != 64 or any(c not in _SHA256_HEX for c in digest):
            raise ValueError("sha256 must be 64 hexadecimal digits (or null when unknown)")
        return digest

    @model_validator(mode="after")
    def _plain_filename(self) -> ModelFile:
        name = self.local_name
        if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"cannot use {name!r} as a file name; set `filename`")
        return self

    @property
    def local_name(self) -> str:
        """The name the download is stored under."""
        return self.filename or unquote(PurePosixPath(urlsplit(self.url).path).name)


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: Kind
    language: Language
    default: bool = False
    licence: str
    licence_url: str | None = None
    description: str = ""
    # Relative to the models folder; `<kind>/<name>` when absent.
    target: str | None = None
    files: list[ModelFile] = Field(min_length=1)

    @field_validator("target")
    @classmethod
    def _relative_target(cls, target: str | None) -> str | None:
        if target is None:
            return None
        norm = posixpath.normpath(target)
        if (
            target.startswith("/")
            or "\\" in target
            or norm in (".", "")
            or norm.split("/")[0] == ".."
        ):
            raise ValueError(f"target must be a folder inside the models folder, got {target!r}")
        return norm

    @model_validator(mode="after")
    def _files_fit_kind(self) -> ModelEntry:
        names = [f.local_name for f in self.files]
        if len(set(names)) != len(names):
            raise ValueError(f"two files would be stored under the same name: {names}")
        if self.kind == "vosk" and [f.format for f in self.files] != ["zip"]:
            raise ValueError("a Vosk model is one zip archive")
        if self.kind == "piper":
            onnx = [n for n in names if n.endswith(".onnx")]
            if len(onnx) != 1 or f"{onnx[0]}.json" not in names:
                raise ValueError("a Piper voice needs its .onnx file and the matching .onnx.json")
        return self

    @property
    def target_path(self) -> PurePosixPath:
        return PurePosixPath(self.target or f"{self.kind}/{self.name}")

    def target_dir(self, models_dir: Path) -> Path:
        return models_dir.joinpath(*self.target_path.parts)

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    models: list[ModelEntry]

    @model_validator(mode="after")
    def _unique(self) -> Manifest:
        for attr in ("name", "target_path"):
            seen: set[object] = set()
            for entry in self.models:
                value = getattr(entry, attr)
                if value in seen:
                    raise ValueError(f"two models share the {attr.replace('_path', '')} {value}")
                seen.add(value)
        return self

    def get(self, name: str) -> ModelEntry | None:
        return next((m for m in self.models if m.name == name), None)

    def defaults(self) -> list[ModelEntry]:
        return [m for m in self.models if m.default]


def parse_manifest(text: str, source: str = "manifest") -> Manifest:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ManifestError(f"{source}: not valid YAML: {e}") from e
    try:
        return Manifest.model_validate(doc)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in e.errors()
        )
        raise ManifestError(f"{source}: {problems}") from e


def load_manifest(path: Path) -> Manifest:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ManifestError(f"{path}: cannot read the manifest: {e.strerror or e}") from e
    return parse_manifest(text, str(path))


# --- what is installed -------------------------------------------------------------


class InstalledFile(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    filename: str
    url: str
    size: int
    sha256: str  # what we computed on the download
    checksum_in_manifest: bool  # False: only the size could be verified


class InstalledMarker(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    kind: Kind
    language: Language
    licence: str = ""
    files: list[InstalledFile]
    installed_at: str

    def matches(self, entry: ModelEntry) -> bool:
        """Whether this install is what `entry` describes (same files, same checksums)."""
        if (self.name, self.kind, self.language) != (entry.name, entry.kind, entry.language):
            return False
        if len(self.files) != len(entry.files):
            return False
        for got, want in zip(self.files, entry.files, strict=True):
            if (got.url, got.size, got.filename) != (want.url, want.size, want.local_name):
                return False
            if want.sha256 is not None and got.sha256 != want.sha256:
                return False
        return True


def make_marker(entry: ModelEntry, digests: dict[str, str]) -> InstalledMarker:
    return InstalledMarker(
        name=entry.name,
        kind=entry.kind,
        language=entry.language,
        licence=entry.licence,
        files=[
            InstalledFile(
                filename=f.local_name,
                url=f.url,
                size=f.size,
                sha256=digests[f.local_name],
                checksum_in_manifest=f.sha256 is not None,
            )
            for f in entry.files
        ],
        installed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def write_marker(folder: Path, marker: InstalledMarker) -> None:
    (folder / MARKER_NAME).write_text(
        json.dumps(marker.model_dump(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def read_marker(folder: Path) -> InstalledMarker | None:
    """The marker in `folder`, or None when absent or unreadable (then: not installed)."""
    try:
        return InstalledMarker.model_validate_json((folder / MARKER_NAME).read_bytes())
    except (OSError, ValidationError):
        return None


def _markers(models_dir: Path) -> list[tuple[InstalledMarker, Path]]:
    found: list[tuple[InstalledMarker, Path]] = []
    # Models live two levels down (`vosk/<name>/`, `piper/<name>/`); dot-folders hold
    # downloads and staging areas, never installed models.
    for marker_path in sorted(models_dir.glob(f"[!.]*/[!.]*/{MARKER_NAME}")):
        marker = read_marker(marker_path.parent)
        if marker is not None:
            found.append((marker, marker_path.parent))
    return found


def installed_models(models_dir: Path) -> dict[str, Path]:
    """Installed models by name → their folder. Missing `models_dir` → empty."""
    return {marker.name: folder for marker, folder in _markers(models_dir)}


def find_model(models_dir: Path, kind: str, language: str) -> Path | None:
    """The folder of an installed model of this kind and language, or None.

    Vosk: the folder is what `vosk.Model(path)` takes. Piper: it holds `<name>.onnx` and
    `<name>.onnx.json`. With several candidates the first by name wins, so the choice
    does not depend on the order the file system lists folders in.
    """
    for marker, folder in sorted(_markers(models_dir), key=lambda mf: mf[0].name):
        if marker.kind == kind and marker.language == language:
            return folder
    return None


def is_up_to_date(entry: ModelEntry, models_dir: Path) -> bool:
    marker = read_marker(entry.target_dir(models_dir))
    return marker is not None and marker.matches(entry)


# --- fetching ----------------------------------------------------------------------

CHUNK = 1 << 16
WRITE_BATCH = 1 << 20  # hand writes to a thread a megabyte at a time, not per chunk
# A zip that unpacks to more than this is refused: the small models unpack to ~70 MB.
MAX_UNPACKED_BYTES = 8 << 30

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=20, sock_read=60)

LANGUAGE_NAMES = {"zh": "Mandarin", "en": "English"}


class FetchError(Exception):
    """A model could not be installed; the message is meant for the user as is."""


class DownloadError(FetchError):
    """The network or the server failed; a `.part` file is kept for resuming."""


class VerifyError(FetchError):
    """The bytes are not what the manifest describes (size or SHA-256)."""


class ArchiveError(FetchError):
    """The archive is unreadable or unsafe to unpack."""


@dataclass
class FetchResult:
    name: str
    status: Literal["installed", "up_to_date", "failed"]
    path: Path | None = None
    error: FetchError | None = None
    warnings: list[str] = field(default_factory=list)


def without_it(entry: ModelEntry) -> str:
    """What the bot does when this model is missing (design §3.6–3.7)."""
    language = LANGUAGE_NAMES.get(entry.language, entry.language)
    if entry.kind == "vosk":
        return f"without it the bot runs keypad-only for {language} callers (no speech recognition)"
    return f"without it the bot speaks {language} prompts with espeak-ng instead of Piper"


async def fetch_models(
    entries: list[ModelEntry],
    models_dir: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
) -> list[FetchResult]:
    """Install each entry unless already installed as described; one failure does not
    stop the others."""
    results: list[FetchResult] = []
    # identity: sizes and Range offsets must count the bytes as stored, not decompressed.
    async with aiohttp.ClientSession(
        timeout=timeout, auto_decompress=False, headers={"Accept-Encoding": "identity"}
    ) as session:
        for entry in entries:
            results.append(await _fetch_one(session, entry, models_dir, force, progress))
    return results


async def _fetch_one(
    session: aiohttp.ClientSession,
    entry: ModelEntry,
    models_dir: Path,
    force: bool,
    progress: Progress | None,
) -> FetchResult:
    target = entry.target_dir(models_dir)
    bound = log.bind(model=entry.name)
    if not force and await asyncio.to_thread(is_up_to_date, entry, models_dir):
        bound.info("model_up_to_date", path=str(target))
        return FetchResult(entry.name, "up_to_date", target)
    warnings = [
        f"the manifest has no checksum for {f.local_name}; only its size ({f.size} bytes) was checked"
        for f in entry.files
        if f.sha256 is None
    ]
    downloads = target.parent / DOWNLOADS / entry.name
    try:
        await asyncio.to_thread(downloads.mkdir, parents=True, exist_ok=True)
        digests: dict[str, str] = {}
        for f in entry.files:
            digests[f.local_name] = await _download(session, f, downloads, progress)
        await asyncio.to_thread(_install, entry, downloads, target, digests)
    except (FetchError, OSError) as e:
        # OSError here is local (permissions, a full disk): still one line, no traceback.
        error = (
            e
            if isinstance(e, FetchError)
            else FetchError(f"cannot write under {target.parent}: {e}")
        )
        bound.info("model_fetch_failed", error=str(error), kind=type(error).__name__)
        await asyncio.to_thread(_remove_empty, downloads)
        return FetchResult(entry.name, "failed", error=error, warnings=warnings)
    for w in warnings:
        bound.warning("model_without_checksum", detail=w)
    bound.info("model_installed", path=str(target))
    return FetchResult(entry.name, "installed", target, warnings=warnings)


# --- downloading ---------------------------------------------------------------------


async def _download(
    session: aiohttp.ClientSession,
    f: ModelFile,
    downloads: Path,
    progress: Progress | None,
) -> str:
    """Download `f` into `downloads`; returns its SHA-256. Raises FetchError."""
    final = downloads / f.local_name
    part = downloads / f"{f.local_name}.part"
    # A finished, verified download from an earlier run whose unpack failed.
    if await asyncio.to_thread(final.is_file):
        size, digest = await asyncio.to_thread(_size_and_digest, final)
        if size == f.size and (f.sha256 is None or digest == f.sha256):
            return digest
        await asyncio.to_thread(final.unlink)

    # Hidden until the server answers, so a failed connection leaves no empty bar behind.
    task = progress.add_task(f.local_name, total=f.size, visible=False) if progress else None
    try:
        restarted = False
        while True:
            try:
                digest = await _download_to_part(session, f, part, progress, task)
                break
            except VerifyError:
                # Not the file the manifest describes: keeping it would poison resumes.
                await asyncio.to_thread(part.unlink, missing_ok=True)
                raise
            except _Restart as e:
                # At most once: a server that keeps refusing the range is broken.
                if restarted:
                    raise DownloadError(f"{f.url}: {e}") from None
                restarted = True
                log.info("download_restart", file=f.local_name, reason=str(e))
                await asyncio.to_thread(part.unlink, missing_ok=True)
    finally:
        if progress is not None and task is not None:
            progress.stop_task(task)

    if f.sha256 is not None and digest != f.sha256:
        await asyncio.to_thread(part.unlink, missing_ok=True)
        raise VerifyError(
            f"{f.local_name}: checksum mismatch (manifest sha256 {f.sha256}, downloaded {digest}); "
            "the download was deleted"
        )
    await asyncio.to_thread(os.replace, part, final)
    return digest


class _Restart(Exception):
    """Throw the partial download away and start again from byte 0."""


async def _download_to_part(
    session: aiohttp.ClientSession,
    f: ModelFile,
    part: Path,
    progress: Progress | None,
    task: TaskID | None,
) -> str:
    offset = await asyncio.to_thread(_existing_size, part)
    if offset > f.size:
        raise _Restart(f"partial file is larger than the manifest size {f.size}")
    hasher = hashlib.sha256()
    if offset:
        await asyncio.to_thread(_hash_into, part, hasher)
    if progress is not None and task is not None:
        progress.update(task, completed=offset)
    if offset == f.size:
        return hasher.hexdigest()  # complete from an earlier run: verify, no request

    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        async with session.get(f.url, headers=headers) as resp:
            if resp.status == 416:
                raise _Restart("server refused the range")
            if resp.status not in (200, 206):
                raise DownloadError(f"{f.url}: HTTP {resp.status} {resp.reason or ''}".rstrip())
            if offset and resp.status == 200:
                # The server ignored Range and sends the whole file: start again from zero.
                log.info("range_ignored", file=f.local_name, offset=offset)
                offset = 0
                hasher = hashlib.sha256()
                if progress is not None and task is not None:
                    progress.update(task, completed=0)
            elif resp.status == 206:
                _check_content_range(resp.headers.get("Content-Range"), offset, f)
            _check_total(resp, offset, f)
            if progress is not None and task is not None:
                progress.update(task, visible=True)
            fh = await asyncio.to_thread(_open, part, append=offset > 0)
            try:
                await _stream(resp, fh, hasher, offset, f, progress, task)
            finally:
                await asyncio.to_thread(fh.close)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
        # .part stays: the next run resumes from where this one stopped.
        raise DownloadError(f"{f.url}: {_describe(e)}") from None
    size = await asyncio.to_thread(_existing_size, part)
    if size != f.size:
        raise DownloadError(f"{f.url}: the connection ended after {size} of {f.size} bytes")
    return hasher.hexdigest()


async def _stream(
    resp: aiohttp.ClientResponse,
    fh: IO[bytes],
    hasher: hashlib._Hash,
    offset: int,
    f: ModelFile,
    progress: Progress | None,
    task: TaskID | None,
) -> None:
    received = offset
    batch = bytearray()
    try:
        async for chunk in resp.content.iter_chunked(CHUNK):
            received += len(chunk)
            if received > f.size:
                batch.clear()
                raise VerifyError(
                    f"{f.local_name}: the server sends more than the manifest size {f.size} bytes"
                )
            batch += chunk
            if len(batch) >= WRITE_BATCH:
                data = bytes(batch)
                batch.clear()  # before writing: a failed write must not be retried below
                await asyncio.to_thread(_write_and_hash, fh, hasher, data)
            if progress is not None and task is not None:
                progress.update(task, completed=received)
    finally:
        # Keep what arrived before an error, so a resume does not fetch it twice.
        if batch:
            await asyncio.to_thread(_write_and_hash, fh, hasher, bytes(batch))


def _check_content_range(value: str | None, offset: int, f: ModelFile) -> None:
    # "bytes 100-999/1000"; the total may be "*" (unknown).
    unit, _, rest = (value or "").partition(" ")
    span, _, total = rest.partition("/")
    start = span.split("-")[0]
    if unit != "bytes" or not start.isdigit() or int(start) != offset:
        raise _Restart(f"asked for bytes from {offset}, got Content-Range {value!r}")
    if total.isdigit() and int(total) != f.size:
        raise VerifyError(
            f"{f.local_name}: the server has {int(total)} bytes, the manifest says {f.size}; "
            "is the manifest out of date?"
        )


def _check_total(resp: aiohttp.ClientResponse, offset: int, f: ModelFile) -> None:
    if resp.content_length is None:
        return
    total = resp.content_length + (offset if resp.status == 206 else 0)
    if total != f.size:
        raise VerifyError(
            f"{f.local_name}: the server has {total} bytes, the manifest says {f.size}; "
            "is the manifest out of date?"
        )


def _describe(e: BaseException) -> str:
    if isinstance(e, asyncio.TimeoutError):
        return "timed out"
    if isinstance(e, aiohttp.ClientConnectorError):
        return f"cannot connect to {e.host}:{e.port} ({e.os_error.strerror or e.os_error})"
    if isinstance(e, aiohttp.ClientPayloadError):
        return "the connection broke off mid-transfer"
    return str(e) or type(e).__name__


# --- blocking helpers (run in threads) -----------------------------------------------


def _open(path: Path, *, append: bool) -> IO[bytes]:
    return path.open("ab" if append else "wb")


def _existing_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _hash_into(path: Path, hasher: hashlib._Hash) -> None:
    with path.open("rb") as fh:
        while block := fh.read(WRITE_BATCH):
            hasher.update(block)


def _size_and_digest(path: Path) -> tuple[int, str]:
    hasher = hashlib.sha256()
    _hash_into(path, hasher)
    return path.stat().st_size, hasher.hexdigest()


def _write_and_hash(fh: IO[bytes], hasher: hashlib._Hash, data: bytes) -> None:
    fh.write(data)
    hasher.update(data)


# --- installing ----------------------------------------------------------------------


def _install(entry: ModelEntry, downloads: Path, target: Path, digests: dict[str, str]) -> None:
    """Unpack verified downloads into a staging folder and rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # Same parent as the target: the final rename never crosses file systems.
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{entry.name}-", dir=target.parent))
    try:
        for f in entry.files:
            src = downloads / f.local_name
            if f.format == "zip":
                try:
                    unpack_zip(src, staging)
                except ArchiveError:
                    src.unlink(missing_ok=True)
                    raise
            else:
                os.replace(src, staging / f.local_name)
        write_marker(staging, make_marker(entry, digests))
        _swap_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(downloads, ignore_errors=True)
    _remove_empty(downloads)


def _remove_empty(downloads: Path) -> None:
    """Remove `.downloads/<name>/` and `.downloads/` when nothing is left to resume."""
    for folder in (downloads, downloads.parent):
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError:  # not empty: a download is pending there
            return


def _swap_into_place(staging: Path, target: Path) -> None:
    old: Path | None = None
    if target.exists():
        old = target.with_name(f".old-{target.name}-{uuid.uuid4().hex[:8]}")
        os.rename(target, old)
    os.rename(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def unpack_zip(archive: Path, dest: Path) -> None:
    """Unpack `archive` into the existing folder `dest`, refusing any member that would
    land outside it (absolute paths, `..`, symlinks). A single top-level folder, as in
    Vosk's zips (`vosk-model-small-cn-0.22/am/…`), is stripped so the model's files sit
    directly in `dest`."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            _check_members(archive, members)
            strip = _common_top_folder([m.filename for m in members])
            root = dest.resolve()
            for m in members:
                rel = PurePosixPath(m.filename)
                parts = rel.parts[1:] if strip else rel.parts
                if not parts:
                    continue
                out = root.joinpath(*parts)
                if not out.resolve().is_relative_to(root):
                    raise ArchiveError(
                        f"{archive.name}: unsafe member {m.filename!r} (outside the target)"
                    )
                if m.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, out.open("wb") as dst:
                    shutil.copyfileobj(src, dst, WRITE_BATCH)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        NotImplementedError,
        zlib.error,
    ) as e:
        raise ArchiveError(f"{archive.name}: not a readable zip archive ({e})") from e


def _check_members(archive: Path, members: list[zipfile.ZipInfo]) -> None:
    total = 0
    for m in members:
        name = m.filename
        path = PurePosixPath(name)
        if (
            name.startswith(("/", "\\"))
            or "\\" in name
            or (len(name) > 1 and name[1] == ":")
            or ".." in path.parts
        ):
            raise ArchiveError(f"{archive.name}: unsafe member {name!r} (path escapes the target)")
        if stat.S_ISLNK(m.external_attr >> 16):
            raise ArchiveError(f"{archive.name}: unsafe member {name!r} (symbolic link)")
        total += m.file_size
    if total > MAX_UNPACKED_BYTES:
        raise ArchiveError(f"{archive.name}: would unpack to {total} bytes; refusing")


def _common_top_folder(names: list[str]) -> bool:
    tops = {PurePosixPath(n).parts[0] for n in names if PurePosixPath(n).parts}
    if len(tops) != 1:
        return False
    top = next(iter(tops))
    # Only a folder, never a lone file at the top, is stripped.
    return all(n.rstrip("/") != top or n.endswith("/") for n in names)


# --- the command line --------------------------------------------------------------

models_app = typer.Typer(no_args_is_help=True, add_completion=False)

_MODELS_DIR = typer.Option(
    None,
    "--models-dir",
    help="Where models are unpacked, vosk/ and piper/ below it (default: settings.speech_models_dir, models/).",
    show_default=False,
)
_MANIFEST = typer.Option(DEFAULT_MANIFEST, "--manifest", help="The model manifest (YAML).")


@models_app.callback()
def _group() -> None:
    """Speech models: Vosk (recognition) and Piper (synthesis)."""


def _load(manifest: Path) -> Manifest:
    try:
        return load_manifest(manifest)
    except ManifestError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e


def _models_dir(option: Path | None) -> Path:
    if option is not None:
        return option
    from bot.settings import get_settings

    # HOTLINE_SPEECH_MODELS_DIR: the same folder the voice service looks in.
    return get_settings().speech_models_dir


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@models_app.command("fetch")
def fetch_command(
    names: list[str] | None = typer.Argument(
        None, help="Models to fetch (default: those marked `default: true`).", show_default=False
    ),
    models_dir: Path | None = _MODELS_DIR,
    manifest: Path = _MANIFEST,
    force: bool = typer.Option(False, "--force", help="Download again even if installed."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print structured logs."),
) -> None:
    """Download, verify (SHA-256) and unpack speech models listed in the manifest."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from bot.logging import configure_logging
    from bot.settings import get_settings

    doc = _load(manifest)
    entries: list[ModelEntry] = []
    for name in names or []:
        entry = doc.get(name)
        if entry is None:
            known = ", ".join(m.name for m in doc.models)
            typer.echo(f"error: no model {name!r} in {manifest}; known: {known}", err=True)
            raise typer.Exit(2)
        entries.append(entry)
    if not names:
        entries = doc.defaults()
    if not entries:
        typer.echo(f"nothing to fetch: no model in {manifest} is marked `default: true`")
        return
    folder = _models_dir(models_dir)

    # The human-readable lines below are the output; logs only on request.
    configure_logging("INFO" if verbose else "ERROR", get_settings().log_json)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    try:
        with progress:
            results = asyncio.run(fetch_models(entries, folder, force=force, progress=progress))
    except KeyboardInterrupt:
        typer.echo("interrupted; run the command again to resume the download", err=True)
        raise typer.Exit(130) from None

    failed = False
    by_name = {e.name: e for e in entries}
    for r in results:
        entry = by_name[r.name]
        for w in r.warnings:
            typer.echo(f"warning: {r.name}: {w}", err=True)
        if r.status == "up_to_date" and r.path is not None:
            typer.echo(f"{r.name}: up to date ({_shown(r.path)})")
        elif r.status == "installed" and r.path is not None:
            typer.echo(f"{r.name}: installed in {_shown(r.path)}")
        else:
            failed = True
            what = "downloaded" if isinstance(r.error, DownloadError) else "installed"
            typer.echo(
                f"error: {r.name} could not be {what}: {r.error}; {without_it(entry)}.", err=True
            )
    if failed:
        raise typer.Exit(1)


def _status(entry: ModelEntry, models_dir: Path) -> str:
    target = entry.target_dir(models_dir)
    marker = read_marker(target)
    if marker is not None:
        return "installed" if marker.matches(entry) else "outdated"
    pending = target.parent / DOWNLOADS / entry.name
    have = (
        sum(p.stat().st_size for p in pending.glob("*") if p.is_file()) if pending.is_dir() else 0
    )
    if have:
        return f"partial {have / 1e6:.1f} MB"
    return "not installed"


@models_app.command("list")
def list_command(models_dir: Path | None = _MODELS_DIR, manifest: Path = _MANIFEST) -> None:
    """Show the manifest's models and which are installed."""
    doc = _load(manifest)
    folder = _models_dir(models_dir)
    rows = [("NAME", "KIND", "LANG", "DEFAULT", "SIZE", "STATUS", "LICENCE")]
    for m in doc.models:
        no_sum = any(f.sha256 is None for f in m.files)
        rows.append(
            (
                m.name,
                m.kind,
                m.language,
                "yes" if m.default else "",
                f"{m.total_size / 1e6:.1f} MB",
                _status(m, folder) + (" (no checksum)" if no_sum else ""),
                m.licence,
            )
        )
    for name, path in installed_models(folder).items():
        if doc.get(name) is None:
            rows.append((name, "", "", "", "", f"installed, not in manifest ({_shown(path)})", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    typer.echo(f"\nmodels folder: {_shown(folder)}")

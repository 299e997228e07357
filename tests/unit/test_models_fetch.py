"""The speech-model manifest (the committed one and the schema's errors), safe zip
unpacking, and what `installed_models` / `find_model` report from marker files.
Category: unit (files in tmp_path only; no network)."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.models_fetch import (
    DEFAULT_MANIFEST,
    MARKER_NAME,
    ArchiveError,
    ManifestError,
    load_manifest,
    make_marker,
    parse_manifest,
    unpack_zip,
    write_marker,
)
from bot.models_fetch import find_model as find
from bot.models_fetch import installed_models as installed

REPO_ROOT = Path(__file__).resolve().parents[2]
SHA = "ab" * 32


def vosk(**over: Any) -> dict[str, Any]:
    model: dict[str, Any] = {
        "name": "vosk-model-small-cn-0.22",
        "kind": "vosk",
        "language": "zh",
        "licence": "Apache-2.0",
        "files": [{"url": "https://example.org/m.zip", "sha256": SHA, "size": 10, "format": "zip"}],
    }
    return model | over


def piper(name: str = "zh_CN-huayan-medium", language: str = "zh", **over: Any) -> dict[str, Any]:
    model: dict[str, Any] = {
        "name": name,
        "kind": "piper",
        "language": language,
        "licence": "see MODEL_CARD",
        "files": [
            {"url": f"https://example.org/{name}.onnx", "sha256": SHA, "size": 10},
            {"url": f"https://example.org/{name}.onnx.json", "sha256": None, "size": 5},
        ],
    }
    return model | over


def manifest_text(*models: dict[str, Any]) -> str:
    return yaml.safe_dump({"version": 1, "models": list(models)})


def error_of(*models: dict[str, Any]) -> str:
    with pytest.raises(ManifestError) as info:
        parse_manifest(manifest_text(*models), "m.yml")
    return str(info.value)


# --- the committed manifest --------------------------------------------------------------


def test_the_committed_manifest_validates_and_every_default_has_a_url() -> None:
    assert DEFAULT_MANIFEST == REPO_ROOT / "models" / "manifest.yml"
    manifest = load_manifest(DEFAULT_MANIFEST)
    defaults = manifest.defaults()
    assert defaults, "`models fetch` without names would fetch nothing"
    for entry in defaults:
        assert entry.files and all(f.url.startswith("https://") for f in entry.files), entry.name
    # What the phone line needs first: Mandarin recognition and a Mandarin voice.
    assert {(m.kind, m.language) for m in defaults} >= {("vosk", "zh"), ("piper", "zh")}
    assert manifest.get("vosk-model-small-cn-0.22") in defaults
    for entry in manifest.models:
        assert entry.target_path.parts == (entry.kind, entry.name)  # covered by .gitignore
        assert entry.licence and entry.licence_url


def test_the_committed_manifest_names_the_models_the_design_asks_for() -> None:
    manifest = load_manifest(DEFAULT_MANIFEST)
    cn = manifest.get("vosk-model-small-cn-0.22")
    assert cn is not None
    assert cn.files[0].url == "https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip"
    voice = manifest.get("zh_CN-huayan-medium")
    assert voice is not None
    assert [f.local_name for f in voice.files] == ["zh_CN-huayan-medium.onnx", "zh_CN-huayan-medium.onnx.json"]
    assert all("/resolve/v1.0.0/" in f.url for f in voice.files)  # a tag, not a moving branch
    assert {(m.kind, m.language) for m in manifest.models} == {
        ("vosk", "zh"),
        ("piper", "zh"),
        ("vosk", "en"),
        ("piper", "en"),
    }


# --- schema errors -----------------------------------------------------------------------


def test_a_valid_entry_gets_its_target_and_file_names() -> None:
    m = parse_manifest(manifest_text(vosk(), piper()))
    entry = m.get("zh_CN-huayan-medium")
    assert entry is not None and entry.total_size == 15
    assert entry.target_dir(Path("/m")) == Path("/m/piper/zh_CN-huayan-medium")
    assert entry.files[1].sha256 is None  # allowed: verified by size, with a warning
    upper = vosk(files=[{"url": "https://x.org/a%20b.zip?download=true", "sha256": SHA.upper(), "size": 1, "format": "zip"}])
    f = parse_manifest(manifest_text(upper)).models[0].files[0]
    assert f.local_name == "a b.zip" and f.sha256 == SHA


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (vosk(files=[{"url": "https://x.org/m.zip", "sha256": "abc", "size": 1, "format": "zip"}]), "64 hexadecimal"),
        (vosk(files=[{"url": "ftp://x.org/m.zip", "sha256": SHA, "size": 1, "format": "zip"}]), "not an http(s) URL"),
        (vosk(files=[{"url": "https://x.org/m.zip", "sha256": SHA, "size": 0, "format": "zip"}]), "greater than 0"),
        (vosk(target="../elsewhere"), "inside the models folder"),
        (vosk(target="/abs"), "inside the models folder"),
        (vosk(language="cn"), "models.0.language"),
        (vosk(kind="whisper"), "models.0.kind"),
        (vosk(name="../x"), "models.0.name"),
        (vosk(files=[{"url": "https://x.org/m.onnx", "sha256": SHA, "size": 1}]), "one zip archive"),
        (piper(files=[{"url": "https://x.org/v.onnx", "sha256": SHA, "size": 1}]), "matching .onnx.json"),
        (vosk(files=[{"url": "https://x.org/", "sha256": SHA, "size": 1, "format": "zip"}]), "set `filename`"),
        (vosk(surprise=1), "Extra inputs"),
    ],
)
def test_schema_errors_name_the_field(model: dict[str, Any], message: str) -> None:
    text = error_of(model)
    assert text.startswith("m.yml: ") and message in text


def test_duplicate_names_and_targets_are_refused() -> None:
    assert "share the name" in error_of(vosk(), vosk())
    assert "share the target" in error_of(vosk(), vosk(name="other", target="vosk/vosk-model-small-cn-0.22"))


def test_unreadable_manifests(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not valid YAML"):
        parse_manifest("models: [", "m.yml")
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        load_manifest(tmp_path / "missing.yml")
    with pytest.raises(ManifestError, match="version"):
        parse_manifest(yaml.safe_dump({"version": 2, "models": []}))


# --- safe unpacking ----------------------------------------------------------------------


def make_zip(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    path.write_bytes(buf.getvalue())
    return path


def test_unpack_strips_a_single_top_folder(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"model/": b"", "model/am/final.mdl": b"A", "model/README": b"R"})
    dest = tmp_path / "out"
    dest.mkdir()
    unpack_zip(archive, dest)
    assert (dest / "am" / "final.mdl").read_bytes() == b"A" and (dest / "README").read_bytes() == b"R"


def test_unpack_keeps_the_layout_without_a_single_top_folder(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"am/final.mdl": b"A", "README": b"R"})
    dest = tmp_path / "out"
    dest.mkdir()
    unpack_zip(archive, dest)
    assert (dest / "am" / "final.mdl").exists() and (dest / "README").exists()


@pytest.mark.parametrize(
    "member",
    ["../evil.txt", "model/../../evil.txt", "/etc/evil.txt", "C:/evil.txt", "model\\..\\..\\evil.txt"],
)
def test_unpack_refuses_members_that_escape(tmp_path: Path, member: str) -> None:
    archive = make_zip(tmp_path / "a.zip", {"model/ok": b"ok", member: b"pwned"})
    dest = tmp_path / "deep" / "out"
    dest.mkdir(parents=True)
    with pytest.raises(ArchiveError, match="unsafe member"):
        unpack_zip(archive, dest)
    assert list(tmp_path.rglob("evil.txt")) == []


def test_unpack_refuses_symlinks_and_non_zips(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(ArchiveError, match="symbolic link"):
        unpack_zip(make_zip(tmp_path / "a.zip", {"m/ok": b"1"}, symlink="m/link"), dest)
    (tmp_path / "b.zip").write_bytes(b"this is no zip")
    with pytest.raises(ArchiveError, match="not a readable zip"):
        unpack_zip(tmp_path / "b.zip", dest)


# --- what is installed -------------------------------------------------------------------


def install_fake(models_dir: Path, model: dict[str, Any]) -> Path:
    entry = parse_manifest(manifest_text(model)).models[0]
    folder = entry.target_dir(models_dir)
    folder.mkdir(parents=True)
    write_marker(folder, make_marker(entry, {f.local_name: SHA for f in entry.files}))
    return folder


def test_installed_models_and_find_model_read_the_markers(tmp_path: Path) -> None:
    models = tmp_path / "models"
    assert installed(models) == {} and find(models, "vosk", "zh") is None  # no folder at all
    cn = install_fake(models, vosk())
    en_b = install_fake(models, piper("en_US-b-medium", "en"))
    install_fake(models, piper("en_US-c-medium", "en"))
    (models / "vosk" / "half-unpacked" / "am").mkdir(parents=True)  # no marker: not installed
    (models / "piper" / "broken").mkdir()
    (models / "piper" / "broken" / MARKER_NAME).write_text("{not json", encoding="utf-8")
    (models / "dialogue").mkdir()
    (models / "dialogue" / "20240101-model.tar.gz").write_bytes(b"rasa")

    assert installed(models) == {
        "vosk-model-small-cn-0.22": cn,
        "en_US-b-medium": en_b,
        "en_US-c-medium": models / "piper" / "en_US-c-medium",
    }
    assert find(models, "vosk", "zh") == cn
    assert find(models, "piper", "en") == en_b  # first by name, whatever the disk order
    assert find(models, "piper", "zh") is None and find(models, "vosk", "en") is None


def test_a_marker_matches_only_the_entry_it_was_written_for(tmp_path: Path) -> None:
    entry = parse_manifest(manifest_text(vosk())).models[0]
    marker = make_marker(entry, {"m.zip": SHA})
    assert marker.matches(entry)
    for changed in (
        vosk(files=[{"url": "https://example.org/m.zip", "sha256": "cd" * 32, "size": 10, "format": "zip"}]),
        vosk(files=[{"url": "https://example.org/v2/m.zip", "sha256": SHA, "size": 10, "format": "zip"}]),
        vosk(language="en"),
    ):
        assert not marker.matches(parse_manifest(manifest_text(changed)).models[0])
    # A checksum added to the manifest later still matches what was downloaded.
    unknown = vosk(files=[{"url": "https://example.org/m.zip", "sha256": None, "size": 10, "format": "zip"}])
    assert make_marker(parse_manifest(manifest_text(unknown)).models[0], {"m.zip": SHA}).matches(entry)

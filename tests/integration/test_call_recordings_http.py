"""Q2 over HTTP: operators' call recordings are played and downloaded only by the posts
allowed to (quality inspectors, seniors, admins, the staff API token), checked on the
server for every request: the API (bearer tokens), a ticket's callRecording attachment,
and the desk's pages and audio (session cookie). Juniors, centres and managers get 403,
nobody signed in 401 (or the sign-in page). SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from bot import desk
from bot.api import recordings as api_recordings
from bot.app import create_app
from bot.desk import auth
from bot.settings import Settings
from bot.store import recordings, service
from bot.store.db import Database
from bot.store.models import CallRecording, DeskUser
from tests.conftest import AClient, make_test_app
from tests.fakes.voice_doubles import until
from tests.integration.desk_client import Client, Operator, sign_in
from tests.unit.test_call_recordings import CALLED_AT, handoff, stored

ACCOUNTS = {"jun": "junior", "sen": "senior", "cen": "centre", "man": "manager", "adm": "admin",
            "insp": "inspector"}
LISTENERS = ("sen", "adm", "insp")
OTHERS = ("jun", "cen", "man")


@pytest.fixture
def accounts(demo_db: Database, password_hash: str) -> Database:
    def add(s: Session) -> None:
        for name, role in ACCOUNTS.items():
            s.add(DeskUser(username=name, display_name=f"{name} display", role=role,
                           branch="西湖分公司" if role == "centre" else None, password_hash=password_hash))

    demo_db.call(add)
    return demo_db


@pytest.fixture
def recorded(accounts: Database, settings: Settings) -> dict[str, Any]:
    """A junior's call on a ticket (attached), and one on a handoff without a ticket."""
    handoff_id, ticket_id = handoff(accounts, "call-1")
    on_ticket = stored(accounts, settings.call_recordings_dir, handoff_id, f"{handoff_id}-call-1-1.wav")
    bare_id, _ = handoff(accounts, "call-2", ticket=False)
    bare = stored(accounts, settings.call_recordings_dir, bare_id, f"{bare_id}-call-2-1.wav")
    voice_message = accounts.call(service.add_voice_message, ticket_id or "", "call-1", "请上午来")[0]
    return {"ticket_id": ticket_id, "handoff_id": handoff_id, "on_ticket": on_ticket, "bare": bare,
            "voice_message": voice_message}


@pytest.fixture
async def web_client(aiohttp_client: AClient, accounts: Database, settings: Settings) -> Client:
    app = make_test_app(accounts, settings)
    api_recordings.setup_routes(app)
    desk.setup_routes(app)
    return await aiohttp_client(app)


@pytest.fixture
def bearer(accounts: Database) -> dict[str, dict[str, str]]:
    """Each account's API token (what POST /api/session hands out)."""
    def tokens(s: Session) -> dict[str, dict[str, str]]:
        out = {}
        for user in s.exec(select(DeskUser)).all():
            assert user.id is not None
            out[user.username] = {"Authorization": f"Bearer {auth.open_session(s, user.id, 12)}"}
        return out

    return accounts.call(tokens)


def file_bytes(settings: Settings, row: CallRecording) -> bytes:
    return (settings.call_recordings_dir / row.file_name).read_bytes()


async def test_only_listening_posts_download_a_recording(
    web_client: Client, recorded: dict[str, Any], bearer: dict[str, dict[str, str]], settings: Settings
) -> None:
    row: CallRecording = recorded["bare"]
    url = f"/api/recordings/{row.id}/content"
    for name in LISTENERS:
        r = await web_client.get(url, headers=bearer[name])
        assert r.status == 200, name
        assert r.headers["Content-Type"] == "audio/wav" and r.headers["Cache-Control"] == "no-store"
        assert await r.read() == file_bytes(settings, row)
    staff = await web_client.get(url, headers={"Authorization": "Bearer staff-secret"})
    assert staff.status == 200
    for name in OTHERS:
        r = await web_client.get(url, headers=bearer[name])
        body = await r.json()
        assert (r.status, body["error"]) == (403, "forbidden"), name
        assert "quality inspectors" in body["reason"]
    assert (await web_client.get(url)).status == 401
    # The bot's own services write records; they have no business listening.
    assert (await web_client.get(url, headers={"Authorization": "Bearer internal-secret"})).status == 401


async def test_the_ticket_attachment_is_guarded_the_same_way(
    web_client: Client, recorded: dict[str, Any], bearer: dict[str, dict[str, str]], settings: Settings
) -> None:
    row: CallRecording = recorded["on_ticket"]
    url = f"/api/attachments/{row.attachment_id}/content"
    inspector = await web_client.get(url, headers=bearer["insp"])
    assert inspector.status == 200 and await inspector.read() == file_bytes(settings, row)
    for name in OTHERS:
        assert (await web_client.get(url, headers=bearer[name])).status == 403, name
    # The caller's message for the repairman stays readable by any staff (A11).
    note = await web_client.get(f"/api/attachments/{recorded['voice_message']}/content", headers=bearer["jun"])
    assert note.status == 200 and await note.text() == "请上午来"


async def test_listing_and_bad_input(
    web_client: Client, recorded: dict[str, Any], bearer: dict[str, dict[str, str]]
) -> None:
    listed = await web_client.get(f"/api/recordings?ticket_id={recorded['ticket_id']}", headers=bearer["sen"])
    body = await listed.json()
    assert [r["id"] for r in body] == [recorded["on_ticket"].id]
    assert body[0]["channels"] == 2 and body[0]["sample_rate"] == 8000 and body[0]["operator"] == "jun"
    assert (await web_client.get(f"/api/recordings?handoff_id={recorded['handoff_id']}",
                                 headers=bearer["jun"])).status == 403
    for query in ("", "?handoff_id=x", "?handoff_id=1&who=me", "?ticket_id=" + "x" * 41):
        r = await web_client.get(f"/api/recordings{query}", headers=bearer["insp"])
        assert r.status == 400, query
    assert (await web_client.get("/api/recordings/abc/content", headers=bearer["insp"])).status == 400
    missing = await web_client.get("/api/recordings/999999/content", headers=bearer["insp"])
    assert missing.status == 404


async def test_a_deleted_recording_is_gone(
    web_client: Client, recorded: dict[str, Any], bearer: dict[str, dict[str, str]], accounts: Database,
    settings: Settings,
) -> None:
    row: CallRecording = recorded["bare"]
    accounts.call(recordings.sweep_expired, settings.call_recordings_dir, 90, now=CALLED_AT + timedelta(days=91))
    r = await web_client.get(f"/api/recordings/{row.id}/content", headers=bearer["insp"])
    assert r.status == 410 and "retention" in (await r.json())["reason"]


@pytest.fixture
async def desk_of(web_client: Client, recorded: dict[str, Any]) -> dict[str, Operator]:
    return {name: await sign_in(web_client, name) for name in ACCOUNTS}


async def test_the_desk_plays_recordings_to_listening_posts_only(
    desk_of: dict[str, Operator], recorded: dict[str, Any], settings: Settings
) -> None:
    row: CallRecording = recorded["on_ticket"]
    audio = f"/desk/recordings/{row.id}/audio"
    player = f'<audio controls preload="none" src="{audio}">'
    for name in LISTENERS:
        status, page = await desk_of[name].get(f"/desk/tickets/{recorded['ticket_id']}")
        assert status == 200 and player in page, name
        status, _ = await desk_of[name].get("/desk/recordings")
        assert status == 200, name
    for name in OTHERS:
        status, page = await desk_of[name].get(f"/desk/tickets/{recorded['ticket_id']}")
        assert status == 200 and "<audio" not in page and "Call recordings" not in page, name
        assert (await desk_of[name].get(audio))[0] == 403, name  # typing the URL does not help
        assert (await desk_of[name].get("/desk/recordings"))[0] == 403, name

    inspector = desk_of["insp"]
    home = await inspector.client.get("/desk/", headers=inspector.cookie, allow_redirects=False)
    assert home.status == 303 and home.headers["Location"] == "/desk/quality"  # Q1-Q8: samples first
    listing = await inspector.client.get("/desk/recordings", headers=inspector.cookie)
    assert "media-src 'self'" in listing.headers["Content-Security-Policy"]
    assert player in await listing.text()
    # The player seeks: Range requests get the part asked for.
    part = await inspector.client.get(audio, headers={**inspector.cookie, "Range": "bytes=0-43"})
    assert part.status == 206 and await part.read() == file_bytes(settings, row)[:44]
    signed_out = await inspector.client.get(audio, allow_redirects=False)
    assert signed_out.status == 303 and signed_out.headers["Location"] == "/desk/login"


async def test_a_senior_hears_the_calls_of_a_handoff(
    desk_of: dict[str, Operator], recorded: dict[str, Any], accounts: Database
) -> None:
    accounts.call(service.take_handoff, recorded["handoff_id"], "sen")
    status, page = await desk_of["sen"].get(f"/desk/handoffs/{recorded['handoff_id']}")
    assert status == 200 and f'src="/desk/recordings/{recorded["on_ticket"].id}/audio"' in page
    status, page = await desk_of["jun"].get(f"/desk/handoffs/{recorded['handoff_id']}")
    assert status == 200 and "<audio" not in page


async def test_the_app_runs_the_retention_sweep(
    aiohttp_client: AClient, accounts: Database, settings: Settings
) -> None:
    handoff_id, _ = handoff(accounts, "call-9", ticket=False)
    now = datetime.now(UTC)
    old = stored(accounts, settings.call_recordings_dir, handoff_id, "old.wav", started=now - timedelta(days=31))
    stored(accounts, settings.call_recordings_dir, handoff_id, "new.wav", started=now - timedelta(days=29))
    app = create_app(settings.model_copy(update={
        "voice_enabled": False, "call_recording_retention_days": 30, "call_recording_sweep_s": 0.05}), accounts)
    await aiohttp_client(app)  # starts the app's background work
    await until(lambda: accounts.call(recordings.get_recording, old.id).deleted_at is not None, 5,  # type: ignore[arg-type]
                "the sweep deleting the old recording")
    assert not (settings.call_recordings_dir / "old.wav").exists()
    assert (settings.call_recordings_dir / "new.wav").exists()

"""The trouble-ticket API, shaped after TM Forum TMF621 v5 (design.md §3.8, §4).

Base path ``/tmf-api/troubleTicket/v5``. Field mapping: ecosystem-notes §6 — the
faulty line is ``relatedEntity[role=faultyLine]``, the caller ``relatedParty[role=
reporter]``, the rest ``troubleTicketCharacteristic``. What is implemented is described
by ``bot/openapi/tickets.yaml``, served at ``…/openapi.yaml``.
"""

from __future__ import annotations

import base64
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from bot import scope as scopes
from bot.api import recordings as api_recordings
from bot.api.auth import actor_of, reader_scope
from bot.api.errors import (
    ApiError,
    AsciiInt,
    canonical_number,
    parse_body,
    path_id,
    query_params,
    read_json,
    validate,
)
from bot.settings import SETTINGS_KEY
from bot.store import recordings as call_recordings
from bot.store import service, workflow
from bot.store.db import DB_KEY
from bot.store.models import STATUSES, TicketStatusChange, utc
from bot.store.service import TicketView
from telnum import group_digits

BASE = "/tmf-api/troubleTicket/v5"
# Ticket ids in paths (ours are TT-…, the world's its own): anything else is no ticket (404).
TICKET_ID = r"{id:[A-Za-z0-9._-]{1,40}}"
OPENAPI_FILE = Path(__file__).resolve().parent.parent / "openapi" / "tickets.yaml"
MAX_TEXT = 2000
MAX_LIMIT = 500

# How a stored channel is named in TMF (ecosystem-notes §6: "IVR" | "webchat").
CHANNEL_NAMES = {"voice": "IVR"}
EXTERNAL_OWNERS = {"voice": "ivr"}


def channel_name(channel: str) -> str:
    return CHANNEL_NAMES.get(channel, channel)


def channel_from_name(name: str) -> str:
    lowered = name.lower()
    for stored, shown in CHANNEL_NAMES.items():
        if lowered in (stored, shown.lower()):
            return stored
    return name


# ------------------------------------------------------------------ rendering


def _iso(value: datetime | None) -> str | None:
    return utc(value).isoformat() if value is not None else None


def _char(name: str, value: Any, value_type: str) -> dict[str, Any]:
    kind = {"string": "StringCharacteristic", "integer": "IntegerCharacteristic",
            "object": "ObjectCharacteristic"}[value_type]
    return {"name": name, "value": value, "valueType": value_type, "@type": kind}


def render_ticket(v: TicketView, base_url: str) -> dict[str, Any]:
    t = v.ticket
    characteristics: list[dict[str, Any]] = []
    if t.contact_number:
        characteristics.append(_char("contactNumber", t.contact_number, "string"))
    if t.symptom_category:
        characteristics.append(_char("symptomCategory", t.symptom_category, "string"))
    if t.symptom_text:
        characteristics.append(_char("symptomText", t.symptom_text, "string"))
    characteristics.append(_char("reportCount", v.report_count, "integer"))
    if v.last_test is not None:
        lt = v.last_test
        characteristics.append(_char("lineTestResult", {
            "result": lt.result, "testId": lt.test_id, "at": _iso(lt.finished_at),
            "summary": {"zh": lt.summary_zh, "en": lt.summary_en},
        }, "object"))
    if v.repairman_message is not None:
        characteristics.append(_char("repairmanMessage", {"zh": v.repairman_message.zh,
                                                          "en": v.repairman_message.en}, "object"))
    if t.branch:
        characteristics.append(_char("branch", t.branch, "string"))
    # Our workflow inside the TMF621 status (bot/store/workflow.py).
    characteristics.append(_char("subStep", workflow.sub_step_of(t), "string"))
    characteristics.append(_char("version", t.version, "integer"))
    if t.fault_class:
        characteristics.append(_char("faultClass", t.fault_class, "string"))
    if t.centre_id:
        characteristics.append(_char("measurementCentre", t.centre_id, "string"))
    if t.chase_count:
        characteristics.append(_char("chaseCount", t.chase_count, "integer"))

    external: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    pairs = [(t.channel, t.conversation_id)] + [(r.channel, r.conversation_id) for r in v.reports]
    for channel, cid in pairs:
        if cid and (channel, cid) not in seen:
            seen.add((channel, cid))
            external.append({"owner": EXTERNAL_OWNERS.get(channel, channel),
                             "externalIdentifierType": "conversationId", "id": cid,
                             "@type": "ExternalIdentifier"})

    body: dict[str, Any] = {
        "id": t.id,
        "href": f"{base_url}{BASE}/troubleTicket/{t.id}",
        "@type": "TroubleTicket",
        "name": t.name,
        "description": t.description,
        "severity": t.severity,
        "priority": t.priority,
        "ticketType": t.ticket_type,
        "status": t.status,
        "statusChangeReason": t.status_change_reason,
        "statusChangeDate": _iso(t.status_change_date),
        "creationDate": _iso(t.creation_date),
        "lastUpdate": _iso(t.last_update),
        "channel": {"id": t.channel, "name": channel_name(t.channel), "@type": "ChannelRef"},
        "relatedEntity": [],
        "relatedParty": [],
        "troubleTicketCharacteristic": characteristics,
        "externalIdentifier": external,
        "note": [{"id": str(n.id), "author": n.author, "date": _iso(n.at), "text": n.text, "@type": "Note"}
                 for n in v.notes],
        "attachment": [_attachment(a) for a in v.attachments],
        "statusChangeHistory": [_history(h) for h in v.history],
    }
    if t.expected_resolution_date is not None:
        body["expectedResolutionDate"] = _iso(t.expected_resolution_date)
    if t.resolution_date is not None:
        body["resolutionDate"] = _iso(t.resolution_date)
    if t.fault_number:
        body["relatedEntity"].append({
            "role": "faultyLine",
            "entity": {"id": t.fault_number, "name": group_digits(t.fault_number),
                       "@referredType": "Service", "@type": "EntityRef"},
            "@type": "RelatedEntity",
        })
    if t.contact_number:
        body["relatedParty"].append({
            "role": "reporter",
            "partyOrPartyRole": {"id": t.contact_number, "name": group_digits(t.contact_number),
                                 "@referredType": "Individual", "@type": "PartyRef"},
            "@type": "RelatedPartyRefOrPartyRoleRef",
        })
    return body


def _history(h: TicketStatusChange) -> dict[str, Any]:
    """TMF621's StatusChange, extended (``@type`` says so) with who did it and which
    workflow action moved which sub-step."""
    return {"status": h.to_status, "statusChangeReason": h.reason, "statusChangeDate": _iso(h.at),
            "changedBy": h.author, "action": h.action, "fromSubStep": h.from_sub_step,
            "subStep": h.to_sub_step, "@type": "HotlineStatusChange", "@baseType": "StatusChange"}


def _attachment(a: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(a.id), "attachmentType": a.kind, "mimeType": a.mime_type,
                           "creationDate": _iso(a.created), "@type": "Attachment"}
    if a.text is not None:  # A11, typed in chat: the message itself
        out["description"] = a.text
        out["content"] = base64.b64encode(a.text.encode("utf-8")).decode("ascii")
    if a.file_path:  # A11 recorded on the phone (staff), or an operator's call (Q2: listening posts)
        out["name"] = Path(a.file_path).name
        out["url"] = f"/api/attachments/{a.id}/content"
    if a.kind == call_recordings.ATTACHMENT_KIND:
        out["description"] = "recording of the call with the operator (stereo: caller left, operator right)"
    return out


async def attachment_content(request: web.Request) -> web.StreamResponse:
    """A recorded voice message, for staff only (a desk session's or the staff API token);
    an operator's call recording only for the posts that may listen to them (Q2)."""
    actor = await actor_of(request)
    settings = request.app[SETTINGS_KEY]
    attachment_id = path_id(request, "attachment")
    row = await request.app[DB_KEY].run(service.get_attachment, attachment_id, scopes.of(actor))
    if row.kind == call_recordings.ATTACHMENT_KIND:
        await api_recordings.require_listener(request)
        recording = await request.app[DB_KEY].run(call_recordings.recording_for_attachment, attachment_id)
        if recording is None:
            raise ApiError(410, "recording_gone", "the recording is no longer there")
        return api_recordings.serve_recording(request, recording, actor.username)
    if row.text is not None:
        return web.Response(text=row.text, content_type="text/plain", charset="utf-8")
    path = settings.recordings_dir / Path(row.file_path or "").name
    if not row.file_path or not path.is_file():
        raise ApiError(410, "recording_gone", "the recording file is no longer there")
    return web.FileResponse(path, headers={"Content-Type": row.mime_type, "Cache-Control": "no-store"})


# --------------------------------------------------------------- request models


class _Tmf(BaseModel):
    """TMF objects may carry @type/@baseType/@schemaLocation; anything else unknown is refused."""

    model_config = ConfigDict(extra="forbid")

    at_type: str | None = Field(default=None, alias="@type")
    at_base_type: str | None = Field(default=None, alias="@baseType")
    at_schema_location: str | None = Field(default=None, alias="@schemaLocation")


class ChannelIn(_Tmf):
    id: str | None = Field(default=None, max_length=40)
    name: str = Field(min_length=1, max_length=40)


class EntityRefIn(_Tmf):
    id: str = Field(min_length=1, max_length=40)
    name: str | None = Field(default=None, max_length=200)
    href: str | None = None
    at_referred_type: str | None = Field(default=None, alias="@referredType")


class RelatedEntityIn(_Tmf):
    role: Literal["faultyLine"]
    entity: EntityRefIn


class CharacteristicIn(_Tmf):
    name: Literal["contactNumber", "symptomCategory", "symptomText", "branch"]
    value: str = Field(max_length=MAX_TEXT)
    valueType: str | None = None
    id: str | None = None


class NoteIn(_Tmf):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    author: str | None = Field(default=None, max_length=100)
    date: datetime | None = None
    id: str | None = None


class TicketCreateIn(_Tmf):
    description: str = Field(min_length=1, max_length=MAX_TEXT)
    severity: str = Field(min_length=1, max_length=40)
    ticketType: str = Field(min_length=1, max_length=40)
    name: str | None = Field(default=None, max_length=200)
    priority: str | None = Field(default=None, max_length=40)
    channel: ChannelIn | None = None
    relatedEntity: list[RelatedEntityIn] = Field(default_factory=list, max_length=1)
    troubleTicketCharacteristic: list[CharacteristicIn] = Field(default_factory=list, max_length=10)
    note: list[NoteIn] = Field(default_factory=list, max_length=20)


class TicketPatchIn(_Tmf):
    status: str | None = Field(default=None, max_length=40)
    statusChangeReason: str | None = Field(default=None, max_length=MAX_TEXT)
    note: list[NoteIn] = Field(default_factory=list, max_length=20)
    severity: str | None = Field(default=None, min_length=1, max_length=40)
    priority: str | None = Field(default=None, min_length=1, max_length=40)


# ------------------------------------------------------------------- handlers


def _base_url(request: web.Request) -> str:
    return request.app[SETTINGS_KEY].bot_url.rstrip("/")


class TicketListQuery(BaseModel):
    """``GET …/troubleTicket``: the filters, the page, and TMF's ``fields`` (accepted, all
    fields are returned)."""

    model_config = ConfigDict(extra="forbid")

    related_entity_id: str | None = Field(default=None, alias="relatedEntity.id", max_length=40)
    status: str | None = Field(default=None, max_length=200)
    channel_name: str | None = Field(default=None, alias="channel.name", max_length=200)
    offset: AsciiInt = Field(default=0, ge=0, le=10**9)
    limit: AsciiInt = Field(default=100, ge=1, le=MAX_LIMIT)
    fields: str | None = Field(default=None, max_length=500)


async def list_tickets(request: web.Request) -> web.Response:
    scope = await reader_scope(request)
    query = query_params(request, TicketListQuery)
    settings = request.app[SETTINGS_KEY]
    fault_number = None
    if query.related_entity_id is not None:
        fault_number, _ = canonical_number(query.related_entity_id, settings.local_area_code,
                                           field="relatedEntity.id")
    statuses = None
    if query.status is not None:
        statuses = [s for s in query.status.split(",") if s]
        bad = [s for s in statuses if s not in STATUSES]
        if bad or not statuses:
            raise ApiError(400, "invalid_parameter",
                           f"status must be one of {', '.join(sorted(STATUSES))}")
    channels = None
    if query.channel_name is not None:
        channels = [channel_from_name(c) for c in query.channel_name.split(",") if c]
    offset, limit = query.offset, query.limit
    views, total = await request.app[DB_KEY].run(
        service.list_tickets, fault_number=fault_number, status=statuses, channel=channels,
        offset=offset, limit=limit, scope=scope,
    )
    base = _base_url(request)
    return web.json_response(
        [render_ticket(v, base) for v in views],
        headers={"X-Total-Count": str(total), "X-Result-Count": str(len(views))},
    )


def etag(version: int) -> str:
    return f'W/"{version}"'


def _if_match(request: web.Request) -> int | None:
    """If-Match: W/"<version>" (or the bare number) from an earlier GET's ETag."""
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise ApiError(400, "invalid_if_match", 'If-Match takes the ETag of a GET, e.g. W/"3"')
    return int(value)


async def get_ticket(request: web.Request) -> web.Response:
    scope = await reader_scope(request)
    view = await request.app[DB_KEY].run(service.get_ticket, request.match_info["id"], scope)
    return web.json_response(render_ticket(view, _base_url(request)), headers={"ETag": etag(view.ticket.version)})


async def create_ticket(request: web.Request) -> web.Response:
    actor = await actor_of(request)
    body = await parse_body(request, TicketCreateIn)
    settings = request.app[SETTINGS_KEY]
    fault_number = None
    if body.relatedEntity:
        fault_number, _ = canonical_number(body.relatedEntity[0].entity.id, settings.local_area_code,
                                           field="relatedEntity[0].entity.id")
    chars = {c.name: c.value for c in body.troubleTicketCharacteristic}
    contact = None
    if "contactNumber" in chars:
        contact, _ = canonical_number(chars["contactNumber"], settings.local_area_code,
                                      field="troubleTicketCharacteristic.contactNumber")
    data = service.TicketCreateData(
        description=body.description, severity=body.severity, ticket_type=body.ticketType,
        name=body.name, priority=body.priority or "Medium",
        channel=channel_from_name(body.channel.name) if body.channel else "api",
        fault_number=fault_number, contact_number=contact,
        symptom_category=chars.get("symptomCategory"), symptom_text=chars.get("symptomText"),
        branch=chars.get("branch"), notes=[(n.author or actor.username, n.text) for n in body.note],
        author=actor.username,
    )
    view = await request.app[DB_KEY].run(service.create_ticket, data)
    rendered = render_ticket(view, _base_url(request))
    return web.json_response(rendered, status=201, headers={"Location": rendered["href"]})


async def patch_ticket(request: web.Request) -> web.Response:
    actor = await actor_of(request)
    body = validate(TicketPatchIn, await read_json(request))
    if body.status is None and not body.note and body.severity is None and body.priority is None:
        raise ApiError(400, "invalid_patch", "the patch changes nothing: give status (with statusChangeReason if "
                                             "you like), note, severity or priority")
    if body.status is not None and body.status not in STATUSES:
        raise ApiError(400, "invalid_status", f"status must be one of {', '.join(sorted(STATUSES))}")
    if body.status is not None and actor.role not in (workflow.API, workflow.A):
        # A desk post moves tickets by its own actions, which carry its rules (who, which step).
        raise ApiError(403, "forbidden_action", f"a {actor.role} changes a ticket's state with "
                       f"POST /api/tickets/{{id}}/actions/{{action}}, not PATCH status")
    try:
        view = await request.app[DB_KEY].run(
            service.patch_ticket, request.match_info["id"], status=body.status,
            status_change_reason=body.statusChangeReason,
            notes=[(n.author or actor.username, n.text) for n in body.note],
            severity=body.severity, priority=body.priority, expected_version=_if_match(request),
            author=actor.username, scope=scopes.of(actor),
        )
    except service.Conflict as exc:
        if exc.code == "stale":  # the If-Match precondition failed
            raise ApiError(412, "stale", exc.reason) from exc
        raise
    return web.json_response(render_ticket(view, _base_url(request)), headers={"ETag": etag(view.ticket.version)})


async def openapi(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(OPENAPI_FILE, headers={"Content-Type": "application/yaml"})


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/attachments/{id}/content", attachment_content)
    app.router.add_get(f"{BASE}/troubleTicket", list_tickets)
    app.router.add_post(f"{BASE}/troubleTicket", create_ticket)
    app.router.add_get(f"{BASE}/troubleTicket/{TICKET_ID}", get_ticket)
    app.router.add_patch(f"{BASE}/troubleTicket/{TICKET_ID}", patch_ticket)
    app.router.add_get(f"{BASE}/openapi.yaml", openapi)

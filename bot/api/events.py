"""TMF621 v5 events about tickets: hubs (another system's listener) and the events we
record (the deadline watch's warnings and alarms, U1–U2).

* ``POST /tmf-api/troubleTicket/v5/hub`` ``{"callback": "https://…", "query": "…"}`` →
  201 Hub; ``GET …/hub/{id}``; ``DELETE …/hub/{id}`` → 204. Staff (the staff API token
  or an admin's token) only.
* Every event is POSTed to ``{callback}/listener/{eventType in lowerCamelCase}`` (TMF621's
  listener paths, e.g. ``…/listener/troubleTicketAttributeValueChangeEvent``) by a job
  (``tmf_notify``), once per event and hub, retried with backoff until the listener
  answers 2xx (bot/jobs/).
* ``GET …/troubleTicket/{id}/event`` lists a ticket's events (our extension, for systems
  that poll instead of listening); readers of tickets only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog
from aiohttp import web
from pydantic import Field
from sqlmodel import Session, col, select

from bot import scope as scopes
from bot.api.auth import actor_of, reader_scope
from bot.api.errors import ApiError, parse_body
from bot.api.tickets import BASE, _Tmf
from bot.jobs import JobContext
from bot.settings import SETTINGS_KEY
from bot.sla.models import EventHub, TicketEvent
from bot.store import workflow
from bot.store.db import DB_KEY
from bot.store.models import Ticket, utc

log = structlog.get_logger(__name__)

NOTIFY_TIMEOUT_S = 10.0


class HubIn(_Tmf):
    callback: str = Field(min_length=8, max_length=500)
    query: str | None = Field(default=None, max_length=500)


def render_event(e: TicketEvent, base_url: str) -> dict[str, Any]:
    return {
        "id": e.event_id, "eventId": e.event_id, "href": f"{base_url}{BASE}/troubleTicket/{e.ticket_id}/event",
        "eventTime": utc(e.event_time).isoformat(), "timeOccurred": utc(e.event_time).isoformat(),
        "eventType": e.event_type, "@type": e.event_type, "@baseType": "Event",
        "title": e.title, "description": e.description, "priority": e.priority,
        "domain": "hotline.deadlineWatch", "correlationId": f"{e.ticket_id}:{e.dedupe_key}",
        "event": e.event,
    }


def _render_hub(h: EventHub, base_url: str) -> dict[str, Any]:
    return {"id": str(h.id), "href": f"{base_url}{BASE}/hub/{h.id}", "callback": h.callback, "query": h.query,
            "@type": "Hub"}


async def _require_staff(request: web.Request) -> str:
    actor = await actor_of(request)
    if actor.role not in (workflow.API, workflow.A):
        raise ApiError(403, "forbidden", "hubs are registered with the staff API token or by an admin")
    return actor.username


def _base(request: web.Request) -> str:
    return request.app[SETTINGS_KEY].bot_url.rstrip("/")


async def create_hub(request: web.Request) -> web.Response:
    who = await _require_staff(request)
    body = await parse_body(request, HubIn)
    parts = urlsplit(body.callback)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(400, "invalid_callback", "callback must be an http(s) URL, e.g. https://crm.example/tmf")

    def add(s: Session) -> EventHub:
        hub = EventHub(callback=body.callback.rstrip("/"), query=body.query, created_by=who)
        s.add(hub)
        s.flush()
        return hub

    hub = await request.app[DB_KEY].run(add)
    log.info("tmf.hub_created", hub_id=hub.id, by=who, host=parts.netloc)
    rendered = _render_hub(hub, _base(request))
    return web.json_response(rendered, status=201, headers={"Location": rendered["href"]})


def _hub_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise ApiError(404, "not_found", f"no hub {raw[:20]}")
    return int(raw)


async def get_hub(request: web.Request) -> web.Response:
    await _require_staff(request)
    hub_id = _hub_id(request)
    hub = await request.app[DB_KEY].run(lambda s: s.get(EventHub, hub_id))
    if hub is None:
        raise ApiError(404, "not_found", f"no hub {request.match_info['id']}")
    return web.json_response(_render_hub(hub, _base(request)))


async def delete_hub(request: web.Request) -> web.Response:
    await _require_staff(request)
    hub_id = _hub_id(request)

    def remove(s: Session) -> bool:
        hub = s.get(EventHub, hub_id)
        if hub is None:
            return False
        s.delete(hub)
        return True

    if not await request.app[DB_KEY].run(remove):
        raise ApiError(404, "not_found", f"no hub {hub_id}")
    return web.Response(status=204)


async def list_ticket_events(request: web.Request) -> web.Response:
    scope = await reader_scope(request)
    ticket_id = request.match_info["id"]

    def read(s: Session) -> list[TicketEvent]:
        ticket = s.get(Ticket, ticket_id)
        if ticket is not None and not scopes.sees_ticket(scope, ticket.branch):
            raise ApiError(404, "not_found", f"no ticket {ticket_id}")  # another branch's: not there
        return list(s.exec(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
                           .order_by(col(TicketEvent.event_time), col(TicketEvent.id))))

    rows = await request.app[DB_KEY].run(read)
    base = _base(request)
    return web.json_response([render_event(e, base) for e in rows])


def listener_path(event_type: str) -> str:
    return "/listener/" + event_type[:1].lower() + event_type[1:]


async def notify(ctx: JobContext) -> None:
    """The ``tmf_notify`` job: one event to one hub. A listener that does not answer 2xx
    raises, so the scheduler tries again later; a hub deleted meanwhile gets nothing."""
    event_id, hub_id = int(ctx.payload["event"]), int(ctx.payload["hub"])

    def load(s: Session) -> tuple[TicketEvent | None, EventHub | None]:
        return s.get(TicketEvent, event_id), s.get(EventHub, hub_id)

    event, hub = await ctx.db.run(load)
    if event is None or hub is None:
        return
    url = hub.callback + listener_path(event.event_type)
    body = render_event(event, ctx.settings.bot_url.rstrip("/"))
    timeout = aiohttp.ClientTimeout(total=NOTIFY_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.post(url, json=body) as response:
        if response.status >= 300:
            raise RuntimeError(f"listener {url} answered {response.status}")
    log.info("tmf.notified", hub_id=hub_id, event_id=event.event_id, ticket_id=event.ticket_id)


def setup_routes(app: web.Application) -> None:
    app.router.add_post(f"{BASE}/hub", create_hub)
    app.router.add_get(f"{BASE}/hub/{{id}}", get_hub)
    app.router.add_delete(f"{BASE}/hub/{{id}}", delete_hub)
    app.router.add_get(f"{BASE}/troubleTicket/{{id}}/event", list_ticket_events)

"""The TMF621-shaped ticket API through aiohttp's test client, on SQLite and PostgreSQL.
Category: integration (HTTP in process, real database)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml

from bot.store import service
from bot.store.db import Database

BASE = "/tmf-api/troubleTicket/v5"
STAFF = {"Authorization": "Bearer staff-secret"}  # the settings fixture's staff API token
TT = f"{BASE}/troubleTicket"


def char(ticket: dict[str, Any], name: str) -> Any:
    return next(c["value"] for c in ticket["troubleTicketCharacteristic"] if c["name"] == name)


async def make_conversation_ticket(client: Any, conversation: str = "conv-1", number: str = "0571 8765 0001") -> str:
    resp = await client.post("/api/reports", json={
        "conversation_id": conversation, "channel": "voice", "language": "zh", "kind": "new",
        "fault_number": number, "contact_number": "138 0013 8000", "symptom_category": "no_dial_tone",
        "symptom_text": "没有拨号音",
        "line_test": {"test_id": "LT-1", "result": "open_circuit", "measurements": {"r_ab_ohm": 1e7}},
    })
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["ticket_id"])


async def test_get_renders_the_tmf_mapping(client: Any) -> None:
    tid = await make_conversation_ticket(client)
    await client.post(f"/api/tickets/{tid}/voice-messages", json={"conversation_id": "conv-1", "text": "下午在家"})
    resp = await client.get(f"{TT}/{tid}")
    assert resp.status == 200
    t = await resp.json()
    assert t["@type"] == "TroubleTicket" and t["id"] == tid and t["href"] == f"http://bot.test{TT}/{tid}"
    assert t["status"] == "acknowledged" and t["ticketType"] == "fault" and t["severity"]
    assert t["relatedEntity"] == [{"role": "faultyLine", "@type": "RelatedEntity", "entity": {
        "id": "057187650001", "name": "0571 8765 0001", "@referredType": "Service", "@type": "EntityRef"}}]
    assert t["relatedParty"][0]["role"] == "reporter"
    assert t["relatedParty"][0]["partyOrPartyRole"]["id"] == "13800138000"
    assert char(t, "contactNumber") == "13800138000"
    assert char(t, "symptomCategory") == "no_dial_tone" and char(t, "symptomText") == "没有拨号音"
    assert char(t, "reportCount") == 1 and char(t, "branch") == "西湖分公司"
    assert char(t, "lineTestResult")["result"] == "open_circuit"
    assert t["channel"] == {"id": "voice", "name": "IVR", "@type": "ChannelRef"}
    assert t["externalIdentifier"] == [{"owner": "ivr", "externalIdentifierType": "conversationId",
                                        "id": "conv-1", "@type": "ExternalIdentifier"}]
    (att,) = t["attachment"]
    assert att["attachmentType"] == "voiceMessage" and att["mimeType"] == "text/plain"
    assert att["description"] == "下午在家" and base64.b64decode(att["content"]).decode() == "下午在家"
    assert [h["status"] for h in t["statusChangeHistory"]] == ["acknowledged"]


async def test_get_unknown_is_404_with_reason(client: Any) -> None:
    resp = await client.get(f"{TT}/TT-NOPE")
    assert resp.status == 404
    assert await resp.json() == {"error": "ticket_not_found", "reason": "no ticket with id 'TT-NOPE'"}


async def test_list_and_filters(client: Any) -> None:
    tid = await make_conversation_ticket(client)
    resp = await client.get(TT)
    assert resp.status == 200 and resp.headers["X-Total-Count"] == "4"  # 3 world faults + 1
    assert len(await resp.json()) == 4
    for formatting in ("0571-8765-0001", "87650001", "057187650001", "(0571) 8765 0001"):
        resp = await client.get(TT, params={"relatedEntity.id": formatting})
        assert [t["id"] for t in await resp.json()] == [tid], formatting
    resp = await client.get(TT, params={"status": "inProgress"})
    assert {t["id"] for t in await resp.json()} == {"TT-W0001", "TT-W0002", "TT-W0003"}
    resp = await client.get(TT, params={"status": "acknowledged,inProgress", "channel.name": "IVR"})
    assert [t["id"] for t in await resp.json()] == [tid]
    resp = await client.get(TT, params={"channel.name": "voice"})
    assert [t["id"] for t in await resp.json()] == [tid]
    resp = await client.get(TT, params={"offset": "1", "limit": "2"})
    assert resp.headers["X-Total-Count"] == "4" and resp.headers["X-Result-Count"] == "2"
    assert len(await resp.json()) == 2
    world = await (await client.get(TT, params={"relatedEntity.id": "057187650008"})).json()
    assert char(world[0], "reportCount") == 3 and char(world[0], "lineTestResult")["result"] == "short_circuit"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"relatedEntity.id": "abc"}, "invalid_number"),
        ({"relatedEntity.id": "123"}, "invalid_number"),
        ({"status": "fixed"}, "invalid_parameter"),
        ({"limit": "-1"}, "invalid_parameter"),
        ({"offset": "x"}, "invalid_parameter"),
        ({"colour": "red"}, "invalid_parameter"),
    ],
)
async def test_list_bad_parameters(client: Any, params: dict[str, str], code: str) -> None:
    resp = await client.get(TT, params=params)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == code and body["reason"]


async def test_post_creates(client: Any) -> None:
    resp = await client.post(TT, headers=STAFF, json={
        "@type": "TroubleTicket", "description": "Line dead since this morning", "severity": "Major",
        "ticketType": "fault", "priority": "High", "channel": {"name": "webchat"},
        "relatedEntity": [{"role": "faultyLine", "entity": {"id": "0571 8765 0002", "@referredType": "Service"}}],
        "troubleTicketCharacteristic": [{"name": "contactNumber", "value": "13912345678"}],
        "note": [{"text": "raised by CRM", "author": "crm"}],
    })
    assert resp.status == 201, await resp.text()
    t = await resp.json()
    assert resp.headers["Location"] == t["href"]
    assert t["status"] == "acknowledged" and t["priority"] == "High" and t["channel"]["name"] == "webchat"
    assert t["relatedEntity"][0]["entity"]["id"] == "057187650002" and char(t, "branch") == "西湖分公司"
    assert t["note"][0]["text"] == "raised by CRM" and t["note"][0]["author"] == "crm"
    got = await (await client.get(f"{TT}/{t['id']}")).json()
    assert got == t


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"severity": "Major", "ticketType": "fault"}, "description: Field required"),
        ({"description": "x", "severity": "Major", "ticketType": "fault", "colour": "red"}, "colour: unknown field"),
        ({"description": 5, "severity": "Major", "ticketType": "fault"}, "description"),
        ({"description": "x" * 2001, "severity": "Major", "ticketType": "fault"}, "description"),
        ({"description": "x", "severity": "Major", "ticketType": "fault",
          "relatedEntity": [{"role": "faultyLine", "entity": {"id": "0571abc"}}]}, "not a phone number"),
        ({"description": "x", "severity": "Major", "ticketType": "fault",
          "troubleTicketCharacteristic": [{"name": "shoeSize", "value": "9"}]}, "troubleTicketCharacteristic.0.name"),
    ],
)
async def test_post_bad_input(client: Any, body: dict[str, Any], needle: str) -> None:
    resp = await client.post(TT, json=body, headers=STAFF)
    assert resp.status == 400
    assert needle in (await resp.json())["reason"]


async def test_malformed_json(client: Any) -> None:
    for raw in ("{not json", "", "[1, 2]"):
        resp = await client.post(TT, data=raw, headers={"Content-Type": "application/json", **STAFF})
        assert resp.status == 400
        assert (await resp.json())["error"] == "malformed_json"


async def test_patch_status_notes_and_refusals(client: Any, demo_db: Database) -> None:
    tid = await make_conversation_ticket(client)
    headers = {"Content-Type": "application/merge-patch+json", **STAFF}
    resp = await client.patch(f"{TT}/{tid}", json={"status": "inProgress", "statusChangeReason": "dispatched",
                                                    "note": [{"text": "sent to MC-XH", "author": "senior"}],
                                                    "priority": "High"}, headers=headers)
    assert resp.status == 200, await resp.text()
    t = await resp.json()
    assert t["status"] == "inProgress" and t["statusChangeReason"] == "dispatched" and t["priority"] == "High"
    assert [n["text"] for n in t["note"]] == ["sent to MC-XH"]
    resp = await client.patch(f"{TT}/{tid}", json={"note": [{"text": "customer called"}]}, headers=headers)
    assert [n["text"] for n in (await resp.json())["note"]] == ["sent to MC-XH", "customer called"]  # appended
    resp = await client.patch(f"{TT}/{tid}", json={"status": "closed"}, headers=headers)
    assert resp.status == 409
    body = await resp.json()
    assert body["error"] == "illegal_transition" and "cannot go from inProgress to closed" in body["reason"]
    assert (await demo_db.run(service.get_ticket, tid)).ticket.status == "inProgress"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"status": "fixed"}, 400, "invalid_status"),
        ({"statusChangeReason": "why"}, 400, "invalid_patch"),
        ({"id": "TT-OTHER"}, 400, "invalid_request"),
        ({"status": 3}, 400, "invalid_request"),
    ],
)
async def test_patch_bad_input(client: Any, body: dict[str, Any], status: int, code: str) -> None:
    tid = await make_conversation_ticket(client)
    resp = await client.patch(f"{TT}/{tid}", json=body, headers=STAFF)
    assert resp.status == status
    assert (await resp.json())["error"] == code


async def test_patch_unknown_ticket_and_wrong_media_type(client: Any) -> None:
    resp = await client.patch(f"{TT}/TT-NOPE", json={"status": "inProgress"}, headers=STAFF)
    assert resp.status == 404
    tid = await make_conversation_ticket(client)
    resp = await client.patch(f"{TT}/{tid}", data="status=closed",
                              headers={"Content-Type": "application/x-www-form-urlencoded", **STAFF})
    assert resp.status == 415


async def test_unknown_route_and_method_are_json(client: Any) -> None:
    resp = await client.get("/tmf-api/troubleTicket/v5/nothing")
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"
    resp = await client.delete(f"{TT}/TT-W0001")
    assert resp.status == 405 and (await resp.json())["error"] == "method_not_allowed"


async def test_openapi_document_is_served(client: Any) -> None:
    resp = await client.get(f"{BASE}/openapi.yaml")
    assert resp.status == 200
    doc = yaml.safe_load(await resp.text())
    assert doc["openapi"].startswith("3.") and "/troubleTicket/{id}" in doc["paths"]
    assert set(doc["paths"]["/troubleTicket/{id}"]) >= {"get", "patch"}

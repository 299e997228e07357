"""The inventory API the dialogue's actions call (A4–A6), on SQLite and PostgreSQL.
Category: integration (HTTP in process, real database)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.linetest.results import RESULT_SUMMARIES, summary_for
from bot.world.schema import LineTestResultCode

KEYS = {"number", "kind", "known_prefix", "exchange", "line", "state", "engineering", "open_fault"}


@pytest.mark.parametrize(
    ("digits", "number", "kind", "state"),
    [
        ("057187650001", "057187650001", "fixed", "normal"),
        ("87650001", "057187650001", "fixed", "normal"),  # A2: local area code added
        ("0571-8765-0002", "057187650002", "fixed", "normal"),
        ("057189990001", "057189990001", "fixed", "unknown_prefix"),  # A4
        ("057187650004", "057187650004", "fixed", "repaired"),  # A5
        ("057187650005", "057187650005", "fixed", "engineering"),
        ("057187660123", "057187660123", "fixed", "engineering"),
        ("057187650007", "057187650007", "fixed", "open_fault"),  # A6
        ("13800138000", "13800138000", "mobile", "normal"),
        ("8613912345678", "13912345678", "mobile", "normal"),
        ("13712345678", "13712345678", "mobile", "unknown_prefix"),
    ],
)
async def test_line_states(client: Any, digits: str, number: str, kind: str, state: str) -> None:
    resp = await client.get(f"/api/inventory/lines/{digits}")
    assert resp.status == 200
    body = await resp.json()
    assert set(body) == KEYS
    assert (body["number"], body["kind"], body["state"]) == (number, kind, state)
    assert body["known_prefix"] is (state != "unknown_prefix")
    assert (body["exchange"] is None) is (state == "unknown_prefix")


async def test_open_fault_details(client: Any) -> None:
    body = await (await client.get("/api/inventory/lines/057187650006")).json()
    assert body["line"] == {"owner": "赵丽", "big_customer": False, "customer_type": "residential",
                            "branch": "西湖分公司"}
    fault = body["open_fault"]
    # status, sub_step and expected_resolution: for the bot's answer to a progress question (issue 13, J4)
    assert set(fault) == {"ticket_id", "report_count", "repairman_message", "last_test", "status", "sub_step",
                          "expected_resolution"}
    assert fault["ticket_id"] == "TT-W0001" and fault["report_count"] == 1
    assert set(fault["repairman_message"]) == {"zh", "en"}
    assert set(fault["last_test"]) == {"result", "at", "summary"}
    assert fault["last_test"]["summary"] == summary_for("open_circuit")
    eng = (await (await client.get("/api/inventory/lines/057187660001")).json())["engineering"]
    assert eng["id"] == "EW-2024-032" and eng["until"] is None and set(eng["description"]) == {"zh", "en"}
    big = (await (await client.get("/api/inventory/lines/057188880001")).json())["line"]
    assert big["big_customer"] is True and big["branch"] == "滨江分公司"
    unlisted = await (await client.get("/api/inventory/lines/057187659999")).json()
    assert unlisted["state"] == "normal" and unlisted["line"] is None


@pytest.mark.parametrize(
    ("digits", "detail"),
    [("12345", "too_short"), ("0571876500011", "too_long"), ("abc", "not_digits"), ("1380013800", "too_short"),
     ("057187650001x", "not_digits")],
)
async def test_invalid_numbers(client: Any, digits: str, detail: str) -> None:
    resp = await client.get(f"/api/inventory/lines/{digits}")
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "invalid_number" and body["detail"] == detail and body["reason"]


@pytest.mark.parametrize(
    ("digits", "known", "prefix"),
    [("057187650001", True, "05718765"), ("87650001", True, "05718765"), ("05718765", True, "05718765"),
     ("057189990001", False, None), ("138", True, "138"), ("0571", False, None)],
)
async def test_prefixes(client: Any, digits: str, known: bool, prefix: str | None) -> None:
    body = await (await client.get(f"/api/inventory/prefixes/{digits}")).json()
    assert body["known"] is known
    assert (body["exchange"] or {}).get("prefix") == prefix


async def test_prefix_not_digits(client: Any) -> None:
    resp = await client.get("/api/inventory/prefixes/0571abc")
    assert resp.status == 400 and (await resp.json())["detail"] == "not_digits"


def test_every_result_code_has_both_languages() -> None:
    assert set(RESULT_SUMMARIES) == {c.value for c in LineTestResultCode}
    for texts in RESULT_SUMMARIES.values():
        assert texts["zh"] and texts["en"]
    assert summary_for("open_circuit") == {"zh": "测试结果：线路断线，我们会尽快派人维修。",
                                           "en": "The test found a break in the line; we will send a repairman."}
    assert summary_for("nonsense")["en"]

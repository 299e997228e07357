"""The originate command the bot sends and how FreeSWITCH's answers map to results."""

from __future__ import annotations

import pytest

from voice.outbound import OutboundSettings, classify, originate_command


@pytest.mark.parametrize(("job", "expected"), [
    ("+OK 1e3956b5-3389-45bd-93d3-921f10f196ed\n", ("answered", None, "1e3956b5-3389-45bd-93d3-921f10f196ed")),
    ("-ERR NO_ANSWER\n", ("no_answer", "NO_ANSWER", None)),
    ("-ERR NO_USER_RESPONSE\n", ("no_answer", "NO_USER_RESPONSE", None)),
    ("-ERR ORIGINATOR_CANCEL\n", ("no_answer", "ORIGINATOR_CANCEL", None)),
    ("-ERR USER_BUSY\n", ("busy", "USER_BUSY", None)),
    ("-ERR CALL_REJECTED\n", ("rejected", "CALL_REJECTED", None)),
    ("-ERR NORMAL_CLEARING\n", ("answered", "NORMAL_CLEARING", None)),
    ("-ERR GATEWAY_DOWN\n", ("failed", "GATEWAY_DOWN", None)),
    ("-ERR INVALID_GATEWAY\n", ("failed", "INVALID_GATEWAY", None)),
    ("-USAGE: <call url> <exten>\n", ("failed", "UNKNOWN", None)),
    ("", ("failed", "UNKNOWN", None)),
])
def test_job_results_map_to_outcomes_with_the_raw_cause(job: str, expected: tuple[str, str | None, str | None]) -> None:
    assert classify(job) == expected


def test_the_command_carries_the_purpose_the_caller_id_and_the_socket_back() -> None:
    settings = OutboundSettings(dial_string="sofia/gateway/carrier/{number}", caller_id_number="057100000000",
                                caller_id_name="Hotline", ring_timeout_s=30, socket_address="10.0.0.5:8084")
    cmd = originate_command(settings, "13900139000", "u-1", {"hotline_purpose": "test_call",
                                                             "hotline_outbound_id": "7"})
    assert cmd == ("originate {origination_uuid=u-1,origination_caller_id_number=057100000000,"
                   "origination_caller_id_name=Hotline,originate_timeout=30,ignore_early_media=true,"
                   "hotline_purpose=test_call,hotline_outbound_id=7}sofia/gateway/carrier/13900139000"
                   " '&socket(10.0.0.5:8084 async full)'")


@pytest.mark.parametrize("bad", [
    {"caller_id_name": "Hot Line"}, {"caller_id_name": "a,b"}, {"caller_id_number": "1}x"},
    {"dial_string": "sofia/gateway/carrier/{number} &bridge(x)"},
])
def test_values_that_would_break_the_command_are_refused(bad: dict[str, str]) -> None:
    settings = OutboundSettings(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        originate_command(settings, "13900139000", "u-1", {})


def test_only_digits_are_dialled() -> None:
    with pytest.raises(ValueError):
        originate_command(OutboundSettings(), "139@evil", "u-1", {})

"""Logs never hold a full phone number, and measured values stay readable."""

from __future__ import annotations

import pytest

from bot.logging import mask_numbers_in


@pytest.mark.parametrize("text", ["13912345678", "0571 8765 0001", "call from 0571-8765-0001 now"])
def test_phone_numbers_are_masked(text: str) -> None:
    masked = mask_numbers_in(text)
    digits = "".join(c for c in masked if c.isdigit())
    assert "*" in masked and len(digits) <= 7


@pytest.mark.parametrize("text", ["seconds=2.2390000031", "2026-12-04", "took 0.1234567 s", "port 40000"])
def test_fractions_dates_and_short_numbers_are_left_alone(text: str) -> None:
    assert mask_numbers_in(text) == text

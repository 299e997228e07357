"""Operators' phones on the real switch: an account registers only with its password and
only from the operators' networks (HOTLINE_FS_OPERATOR_CIDR)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.switch.fixtures import StartSwitch
from tests.switch.freeswitch_process import free_port
from tests.switch.sipp import SippPhone

pytestmark = pytest.mark.switch


async def test_a_phone_registers_with_its_password_and_not_without(start_switch: StartSwitch, tmp_path: Path) -> None:
    fs = start_switch(free_port())
    phone = SippPhone(tmp_path, fs.ports.internal_sip, account="2001", password=fs.OPERATOR_PASSWORD)
    assert await phone.register() == 0, phone.errors("register")
    assert await phone.register(password="wrong-password") != 0
    assert "403" in phone.errors("register") or "401" in phone.errors("register")


async def test_the_right_password_from_outside_the_operators_network_is_refused(
        start_switch: StartSwitch, tmp_path: Path) -> None:
    fs = start_switch(free_port(), HOTLINE_FS_OPERATOR_CIDR="198.51.100.0/24")
    phone = SippPhone(tmp_path, fs.ports.internal_sip, account="2001", password=fs.OPERATOR_PASSWORD)
    assert await phone.register() != 0

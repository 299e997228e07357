"""The real-switch tier without the dialogue stack: FreeSWITCH with this repository's
tree, SIPp phones and callers (fixtures in tests/switch/fixtures.py)."""

from tests.switch.fixtures import freeswitch_build, start_switch  # noqa: F401 - fixtures for this folder

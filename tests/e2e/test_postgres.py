"""The same flows with the store on PostgreSQL: only the bot's database changes (Rasa and
the actions reach the store through the bot's API), so only the bot is restarted."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from bot.stack import Stack
from bot.world.loader import load_world_file
from tests.e2e.conftest import WORLD, Client, Conversation

pytestmark = [pytest.mark.stack, pytest.mark.postgres]
ADMIN_URL = os.environ.get("HOTLINE_TEST_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="module")
def postgres_bot(stack: Stack) -> Iterator[Client]:
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {ADMIN_URL}: {exc}")
    name = f"hotline_e2e_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    bot = next(s for s in stack.services if s.name == "bot")
    sqlite_url = bot.env["HOTLINE_DATABASE_URL"]
    load_world_file(WORLD, reset=True, settings=stack.settings.model_copy(update={"database_url": url}))
    bot.env["HOTLINE_DATABASE_URL"] = url
    stack.restart("bot")
    try:
        yield Client(stack.settings.bot_url)
    finally:
        bot.env["HOTLINE_DATABASE_URL"] = sqlite_url
        stack.restart("bot")
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_a1_to_a11_on_postgresql(postgres_bot: Client) -> None:
    c = Conversation(postgres_bot)
    c.keys("1")
    c.keys("057160000002#")
    c.keys("1")
    c.say("联系电话13912345678，电话有杂音")
    r = c.keys("1")
    assert r.prompts[-1] == "utter_ask_wants_message"
    c.keys("2")
    c.keys("2")
    ticket = postgres_bot.tickets(relatedEntity_id="057160000002")[0]
    chars = {ch["name"]: ch["value"] for ch in ticket["troubleTicketCharacteristic"]}
    assert chars["symptomCategory"] == "noise" and chars["contactNumber"] == "13912345678"
    assert postgres_bot.outcomes(c.id)[-1]["outcome"] == "accepted"


def test_repeat_report_is_counted_on_postgresql(postgres_bot: Client) -> None:
    c = Conversation(postgres_bot)
    c.keys("1")
    c.keys("057160000007#")
    assert c.keys("1").prompts[0] == "utter_last_test_result"
    ticket = postgres_bot.tickets(relatedEntity_id="057160000007")[0]
    chars = {ch["name"]: ch["value"] for ch in ticket["troubleTicketCharacteristic"]}
    assert int(chars["reportCount"]) == 3

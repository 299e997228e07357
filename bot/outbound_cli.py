"""``python -m bot call test NUMBER``: ask the running bot to place a test call and
wait for how it went (POST/GET /api/outbound-calls, with the staff or internal token)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import typer

call_app = typer.Typer(no_args_is_help=True, add_completion=False)
POLL_S = 0.5


@call_app.command("test", help="Place a test call to NUMBER (one a caller gave or used) and print its outcome.")
def test_call_command(
    number: str,
    language: str = typer.Option("zh", help="zh or en: the language of the test message."),
    wait: bool = typer.Option(True, help="Wait until the call is over."),
) -> None:
    from bot.settings import get_settings

    settings = get_settings()
    token = settings.staff_api_token or settings.internal_api_token
    if token is None:
        typer.echo("set HOTLINE_STAFF_API_TOKEN (or the bot's HOTLINE_INTERNAL_API_TOKEN) to place calls", err=True)
        raise typer.Exit(2)
    timeout_s = settings.outbound_ring_timeout_s + 330.0  # ringing, then the call itself
    code, row = asyncio.run(_place(settings.bot_url, token.get_secret_value(), number, language, wait, timeout_s))
    typer.echo(json.dumps(row, ensure_ascii=False, indent=2))
    raise typer.Exit(code)


async def _place(url: str, token: str, number: str, language: str, wait: bool,
                 timeout_s: float) -> tuple[int, dict[str, Any]]:
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(url, headers=headers) as http:
        try:
            async with http.post("/api/outbound-calls", json={"number": number, "purpose": "test_call",
                                                              "language": language}) as resp:
                row = await resp.json()
                if resp.status != 202:
                    return 1, row
        except aiohttp.ClientError as exc:
            return 2, {"error": "bot_unreachable", "reason": f"{url}: {exc}"}
        deadline = time.monotonic() + timeout_s
        while wait and row.get("state") != "ended" and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
            async with http.get(f"/api/outbound-calls/{row['id']}") as resp:
                row = await resp.json()
    return (0 if row.get("result") == "answered" or not wait else 1), row

"""HTTP clients for what the actions consult: the bot's store/inventory API and the
line-test unit. Async only, with timeouts; every failure is a ServiceError that the
actions turn into a dialogue event (apology + human), never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from actions.config import ActionConfig

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """A service could not be reached or answered with an error."""


class NotFound(ServiceError):
    pass


class Services:
    """One instance per action run: cheap, and nothing is opened at import time."""

    def __init__(self, config: ActionConfig | None = None) -> None:
        self.config = config or ActionConfig.from_env()

    async def _call(self, method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=self.config.http_timeout_s)
        try:
            headers = {}
            if self.config.bot_token and url.startswith(self.config.bot_url):
                headers["Authorization"] = f"Bearer {self.config.bot_token}"
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.request(method, url, json=body, headers=headers) as resp:
                    if resp.status == 404:
                        raise NotFound(f"{method} {url}: 404")
                    if resp.status >= 400:
                        text = await resp.text()
                        raise ServiceError(f"{method} {url}: {resp.status} {text[:200]}")
                    data = await resp.json(content_type=None)
                    return data if isinstance(data, dict) else {"items": data}
        except ServiceError:
            raise
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ServiceError(f"{method} {url}: {type(exc).__name__} {exc}") from exc
        except Exception as exc:  # asyncio.TimeoutError on 3.10 is not TimeoutError
            raise ServiceError(f"{method} {url}: {type(exc).__name__} {exc}") from exc

    # --- the bot's inventory and store ---
    async def look_up_line(self, number: str) -> dict[str, Any]:
        return await self._call("GET", f"{self.config.bot_url}/api/inventory/lines/{number}")

    async def submit_report(self, report: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", f"{self.config.bot_url}/api/reports", report)

    async def save_voice_message(self, ticket_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call(
            "POST", f"{self.config.bot_url}/api/tickets/{ticket_id}/voice-messages", body
        )

    async def record_outcome(self, outcome: dict[str, Any]) -> None:
        await self._call("POST", f"{self.config.bot_url}/api/outcomes", outcome)

    async def queue_handoff(self, handoff: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", f"{self.config.bot_url}/api/handoffs", handoff)

    async def operators_open(self) -> bool:
        status = await self._call("GET", f"{self.config.bot_url}/api/service/status")
        return bool(status.get("operators_open"))

    # --- the line-test unit ---
    async def start_line_test(self, number: str) -> dict[str, Any]:
        return await self._call("POST", f"{self.config.linetest_url}/v1/tests", {"number": number})

    async def get_line_test(self, test_id: str) -> dict[str, Any]:
        return await self._call("GET", f"{self.config.linetest_url}/v1/tests/{test_id}")

"""A signed-in desk browser for the HTTP tests: sign in through the real form (CSRF and
all), then get and post with the session cookie, so several operators can share one
test client."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.desk import auth
from tests.conftest import DESK_TEST_PASSWORD

XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')

Client = TestClient[web.Request, web.Application]


async def login(client: Client, username: str, password: str = DESK_TEST_PASSWORD) -> Any:
    page = await client.get("/desk/login")
    assert page.status == 200
    match = CSRF_FIELD.search(await page.text())
    assert match is not None
    return await client.post("/desk/login", data={"csrf": match.group(1), "username": username,
                                                  "password": password}, allow_redirects=False)


@dataclass
class Operator:
    """A signed-in browser, carried by its cookie."""

    client: Client
    token: str
    csrf: str

    @property
    def cookie(self) -> dict[str, str]:
        return {"Cookie": f"{auth.SESSION_COOKIE}={self.token}"}

    async def get(self, path: str) -> tuple[int, str]:
        r = await self.client.get(path, headers=self.cookie, allow_redirects=False)
        return r.status, await r.text()

    async def post(self, path: str, csrf: str | None = "session", **data: str) -> tuple[int, str, str | None]:
        form = dict(data)
        if csrf is not None:
            form["csrf"] = self.csrf if csrf == "session" else csrf
        r = await self.client.post(path, data=form, headers=self.cookie, allow_redirects=False)
        return r.status, await r.text(), r.headers.get("Location")

    async def act(self, ticket_id: str, action: str, version: int, **data: str) -> tuple[int, str, str | None]:
        """A workflow action from the ticket page's form."""
        return await self.post(f"/desk/tickets/{ticket_id}/actions/{action}", version=str(version), **data)


async def sign_in(client: Client, username: str) -> Operator:
    r = await login(client, username)
    assert r.status == 303, await r.text()
    token = r.cookies[auth.SESSION_COOKIE].value
    client.session.cookie_jar.clear()
    home = await client.get("/desk/", headers={"Cookie": f"{auth.SESSION_COOKIE}={token}"})
    match = CSRF_FIELD.search(await home.text())
    assert match is not None
    return Operator(client, token, match.group(1))

"""Browser fixtures: headless Debian Chromium driven by Playwright (sync API).

`browser_page` is a fresh page (own context: empty storage) whose `base_url` is the site
under test, so `page.goto("/")` opens the web chat. The site is, in order:
  1. the test's indirect parameter: `@pytest.mark.parametrize("browser_page", [url], indirect=True)`;
  2. otherwise the `webchat_base_url` fixture, which a module can override (e.g. to
     point at the real stack); by default it is the fake chat API serving our page.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

REPO_ROOT = Path(__file__).resolve().parents[2]
STATIC_DIR = REPO_ROOT / "bot" / "web" / "static"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if str(REPO_ROOT) not in sys.path:  # `tests.fakes` without an installed `tests` package
    sys.path.insert(0, str(REPO_ROOT))

from tests.fakes.fake_chat_api import FakeChatState, make_app  # noqa: E402


@dataclass
class FakeChatServer:
    url: str
    state: FakeChatState


class _ServerThread(threading.Thread):
    """An aiohttp app on its own event loop, so sync Playwright can run in the test thread."""

    def __init__(self, app: web.Application) -> None:
        super().__init__(daemon=True, name="fake-chat-api")
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.error: BaseException | None = None
        self._runner: web.AppRunner | None = None

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as exc:  # reported to the test thread
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self._runner.cleanup() if self._runner else asyncio.sleep(0))
        self.loop.close()

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.join(timeout=10)


@contextlib.contextmanager
def serving(app: web.Application) -> Iterator[str]:
    """``app`` served on a free port in its own thread, for a sync Playwright test; its URL."""
    thread = _ServerThread(app)
    thread.start()
    thread.ready.wait(10)
    if thread.error is not None:
        raise thread.error
    try:
        yield f"http://127.0.0.1:{thread.port}"
    finally:
        thread.stop()


@pytest.fixture(scope="session")
def fake_chat_server() -> Iterator[FakeChatServer]:
    state = FakeChatState()
    thread = _ServerThread(make_app(state, static_dir=STATIC_DIR))
    thread.start()
    thread.ready.wait(10)
    if thread.error is not None:
        raise thread.error
    try:
        yield FakeChatServer(f"http://127.0.0.1:{thread.port}", state)
    finally:
        thread.stop()


@pytest.fixture
def fake_chat(fake_chat_server: FakeChatServer) -> Iterator[FakeChatServer]:
    """The fake, with its switches and conversations reset for this test."""
    fake_chat_server.state.reset()
    yield fake_chat_server
    fake_chat_server.state.reset()


@pytest.fixture
def webchat_base_url(fake_chat: FakeChatServer) -> str:
    """Override in a module to run the browser tests against another site."""
    return fake_chat.url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One Chromium per test module. Not per session: sync Playwright keeps an event loop
    running in the main thread while it lives, and pytest-asyncio tests collected after
    the browser tests would fail with "cannot be called from a running event loop". For
    the same reason, keep async tests out of modules that use this fixture."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover
        pytest.skip("the playwright Python package is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(request: pytest.FixtureRequest, chromium: Any) -> Iterator[Any]:
    base_url = getattr(request, "param", None) or request.getfixturevalue("webchat_base_url")
    context = chromium.new_context(
        base_url=base_url,
        locale="zh-CN",
        viewport={"width": 420, "height": 860},
        device_scale_factor=1,
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # tests may assert the page raised nothing
    try:
        yield page
    finally:
        context.close()


def desk_page(browser: Any, base_url: str, username: str, password: str) -> tuple[Any, Any]:
    """A desk page signed in as ``username`` in a browser context of its own (one per
    person at their own desk): (page, context). Page errors are kept in ``page.js_errors``."""
    from playwright.sync_api import expect

    context = browser.new_context(base_url=base_url, locale="zh-CN", viewport={"width": 1200, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    page.goto("/desk/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page.locator("header .who")).to_contain_text(username)
    return page, context

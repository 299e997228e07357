"""Desk sign-in: server-side sessions, CSRF tokens, the failed-sign-in throttle, and
``require_role`` — the one gate every desk handler goes through.

A session is a random 32-byte token in the ``hotline_desk`` cookie (HttpOnly,
SameSite=Strict, Secure when configured); the store keeps only its SHA-256, the user,
the expiry and the session's CSRF token. Every POST must carry that CSRF token in the
form. The sign-in form, which has no session yet, uses a double-submit token instead
(a cookie and the same value in the form).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from aiohttp import web
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.desk import pages, users
from bot.settings import SETTINGS_KEY, Settings
from bot.store.db import DB_KEY
from bot.store.models import DeskLoginThrottle, DeskSession, DeskUser, utc, utcnow

log = structlog.get_logger(__name__)

SESSION_COOKIE = "hotline_desk"
LOGIN_COOKIE = "hotline_desk_login"
COOKIE_PATH = "/desk"
LOGIN_PATH = "/desk/login"

MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Identity:
    """The signed-in operator, as a handler sees them."""

    user_id: int
    username: str
    display_name: str
    role: str
    branch: str | None
    csrf_token: str
    language: str | None = None  # zh | en as the account chose; None: the desk's default


DeskHandler = Callable[[web.Request, Identity], Awaitable[web.StreamResponse]]


def new_token() -> str:
    return secrets.token_urlsafe(32)  # 32 random bytes


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_token(given: object, expected: str) -> bool:
    return isinstance(given, str) and bool(given) and hmac.compare_digest(given.encode(), expected.encode())


# ------------------------------------------------------------------ sessions


def open_session(s: Session, user_id: int, hours: float, *, now: datetime | None = None) -> str:
    """A new session for the user (a fresh token at every sign-in: no fixation);
    expired sessions of anyone are swept on the way."""
    now = now or utcnow()
    s.execute(delete(DeskSession).where(col(DeskSession.expires) <= now))
    token = new_token()
    s.add(DeskSession(token_hash=token_hash(token), user_id=user_id, csrf_token=new_token(),
                      created=now, expires=now + timedelta(hours=hours)))
    return token


def session_identity(s: Session, token: str, *, now: datetime | None = None) -> Identity | None:
    now = now or utcnow()
    row = s.exec(
        select(DeskSession, DeskUser).join(DeskUser, col(DeskUser.id) == col(DeskSession.user_id))
        .where(DeskSession.token_hash == token_hash(token))
    ).first()
    if row is None:
        return None
    session, user = row
    if utc(session.expires) <= now or not user.active:
        s.delete(session)
        return None
    assert user.id is not None
    return Identity(user.id, user.username, user.display_name, user.role, user.branch, session.csrf_token,
                    user.language)


def close_session(s: Session, token: str) -> None:
    s.execute(delete(DeskSession).where(col(DeskSession.token_hash) == token_hash(token)))


# ------------------------------------------------------------------ throttle


@dataclass(frozen=True)
class LoginCheck:
    locked_until: datetime | None
    user_id: int | None
    password_hash: str | None
    active: bool


def login_check(s: Session, username: str, *, now: datetime | None = None) -> LoginCheck:
    """What a sign-in needs before the (slow) password check, read in one go."""
    now = now or utcnow()
    throttle = s.get(DeskLoginThrottle, username)
    locked = None
    if throttle is not None and throttle.locked_until is not None and utc(throttle.locked_until) > now:
        locked = utc(throttle.locked_until)
    user = s.exec(select(DeskUser).where(DeskUser.username == username)).first()
    if user is None:
        return LoginCheck(locked, None, None, False)
    return LoginCheck(locked, user.id, user.password_hash, user.active)


def record_failure(s: Session, username: str, *, now: datetime | None = None) -> datetime | None:
    """Count a failed sign-in; the fifth within 15 minutes locks the username for 15
    minutes. Returns the end of the lock when this failure started one."""
    now = now or utcnow()
    row = s.get(DeskLoginThrottle, username, with_for_update=True)
    if row is None:
        try:
            with s.begin_nested():  # two first failures at once: the second updates the row
                s.add(DeskLoginThrottle(username=username, failures=1, window_start=now))
            return None
        except IntegrityError:
            row = s.get(DeskLoginThrottle, username, with_for_update=True, populate_existing=True)
            assert row is not None
    if utc(row.window_start) <= now - FAILURE_WINDOW or (
        row.locked_until is not None and utc(row.locked_until) <= now
    ):
        row.failures, row.window_start, row.locked_until = 0, now, None
    row.failures += 1
    locked = None
    if row.failures >= MAX_FAILURES:
        locked = now + LOCKOUT
        row.locked_until, row.failures, row.window_start = locked, 0, now
    s.add(row)
    return locked


def login_succeeded(
    s: Session, user_id: int, username: str, hours: float, *, new_hash: str | None = None,
    now: datetime | None = None,
) -> str:
    """Forget the failures, upgrade an old hash, open the session; returns its token."""
    s.execute(delete(DeskLoginThrottle).where(col(DeskLoginThrottle.username) == username))
    if new_hash is not None:
        user = s.get(DeskUser, user_id)
        if user is not None:
            user.password_hash = new_hash
            s.add(user)
    return open_session(s, user_id, hours, now=now)


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in attempt: a session token, or an HTTP status and why not."""

    token: str | None
    status: int
    error: str | None = None
    locked_until: datetime | None = None


async def sign_in(request: web.Request, raw_username: str, password: str) -> SignIn:
    """Check a username and password with the throttle; open a session on success.
    Shared by the desk's form and the API's ``POST /api/session``."""
    wrong = SignIn(None, 401, "Wrong username or password.")
    try:
        username = users.normalise_username(raw_username)
    except users.UserError:
        return wrong
    db = request.app[DB_KEY]
    check = await db.run(login_check, username)
    if check.locked_until is not None:
        log.warning("desk.login_locked", username=username)
        return SignIn(None, 429, "Too many failed sign-ins for this username.", check.locked_until)
    # argon2 takes ~0.1 s of CPU: off the event loop. Unknown users are checked
    # against a dummy hash so the answer takes as long either way.
    ok = await asyncio.to_thread(users.verify_password, check.password_hash or users.dummy_hash(), password[:4096])
    if not ok or check.user_id is None:
        locked = await db.run(record_failure, username)
        log.warning("desk.login_failed", username=username, locked=locked is not None)
        return wrong
    if not check.active:
        log.warning("desk.login_disabled", username=username)
        return SignIn(None, 403, "This account is disabled. Ask an administrator.")
    new_hash = None
    if check.password_hash and users.needs_rehash(check.password_hash):
        new_hash = await asyncio.to_thread(users.hash_password, password)
    token = await db.run(login_succeeded, check.user_id, username, settings_of(request).desk_session_hours,
                         new_hash=new_hash)
    log.info("desk.login", username=username)
    return SignIn(token, 200)


# ------------------------------------------------------------------ cookies


def set_session_cookie(response: web.StreamResponse, settings: Settings, token: str) -> None:
    # No max-age: the cookie ends with the browser; the server ends it at `expires`.
    response.set_cookie(SESSION_COOKIE, token, path=COOKIE_PATH, httponly=True, samesite="Strict",
                        secure=settings.desk_secure_cookies)


def clear_session_cookie(response: web.StreamResponse, settings: Settings) -> None:
    response.del_cookie(SESSION_COOKIE, path=COOKIE_PATH, secure=settings.desk_secure_cookies,
                        httponly=True, samesite="Strict")


def set_login_cookie(response: web.StreamResponse, settings: Settings, token: str) -> None:
    response.set_cookie(LOGIN_COOKIE, token, path=LOGIN_PATH, httponly=True, samesite="Strict",
                        secure=settings.desk_secure_cookies, max_age=3600)


def clear_login_cookie(response: web.StreamResponse, settings: Settings) -> None:
    response.del_cookie(LOGIN_COOKIE, path=LOGIN_PATH, secure=settings.desk_secure_cookies,
                        httponly=True, samesite="Strict")


async def current_identity(request: web.Request) -> Identity | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 100:
        return None
    return await request.app[DB_KEY].run(session_identity, token)


# ------------------------------------------------------------------ the gate


def require_role(*roles: str) -> Callable[[DeskHandler], Handler]:
    """Signed in, with one of ``roles`` (any role when none are given); every POST
    must also carry the session's CSRF token. Enforced here, on the server, for every
    desk handler: hiding a button is never the protection."""

    def decorate(handler: DeskHandler) -> Handler:
        @functools.wraps(handler)
        async def gate(request: web.Request) -> web.StreamResponse:
            who = await current_identity(request)
            if who is None:
                if request.method == "GET":
                    return pages.redirect(LOGIN_PATH)
                return pages.error_page(request, 401, "Signed out", "Your session has ended. Sign in again.")
            if request.method == "POST":
                form = await request.post()
                if not same_token(form.get("csrf"), who.csrf_token):
                    log.warning("desk.csrf_refused", username=who.username, path=request.path)
                    return pages.error_page(
                        request, 403, "Form refused",
                        "The form's security token is missing or out of date. Go back, reload the page "
                        "and try again.", who=who)
            if roles and who.role not in roles:
                log.warning("desk.role_refused", username=who.username, role=who.role, path=request.path)
                return pages.error_page(request, 403, "Not for your post",
                                        "Your account's role cannot open this page or do this.", who=who)
            return await handler(request, who)

        return gate

    return decorate


def settings_of(request: web.Request) -> Settings:
    return request.app[SETTINGS_KEY]

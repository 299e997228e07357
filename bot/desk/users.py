"""Desk accounts: roles, password hashing (argon2id), create / list / disable, and the
demo accounts `make run` creates with the demo world."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.settings import Settings
from bot.store.db import Database
from bot.store.models import DeskRole, DeskSession, DeskUser

log = structlog.get_logger(__name__)

ROLES: tuple[str, ...] = tuple(r.value for r in DeskRole)
ROLE_NAMES = {
    "junior": "junior operator",
    "senior": "senior operator",
    "centre": "measurement centre",
    "manager": "manager hotline",
    "admin": "administrator",
    "inspector": "quality inspector",
    "surveyor": "satisfaction surveyor",
    "datamanager": "data manager",
    "statistician": "statistician",
    "deputy": "deputy manager",
}
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 takes any length; this only bounds the work per attempt

# argon2id with the library's defaults (RFC 9106 "low memory": t=3, m=64 MiB, p=4).
_hasher = PasswordHasher()


class UserError(ValueError):
    """A refused account change, with a reason a person can read."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@functools.cache
def dummy_hash() -> str:
    """Verified against when the username is unknown, so a sign-in takes as long
    whether or not the account exists."""
    return _hasher.hash("not-a-real-password")


def normalise_username(raw: str) -> str:
    name = raw.strip().lower()
    if not _USERNAME.match(name):
        raise UserError("a username is 1–64 of a-z 0-9 . _ - (starting with a letter or digit)")
    return name


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"the password must have at most {MAX_PASSWORD} characters")


def check_role(role: str, branch: str | None) -> None:
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if role == DeskRole.centre.value and not branch:
        raise UserError("a measurement-centre account needs --branch (the branch whose centre it is)")


def add_user(
    s: Session, username: str, role: str, password: str, *,
    display_name: str | None = None, branch: str | None = None,
) -> DeskUser:
    username = normalise_username(username)
    branch = branch.strip() if branch and branch.strip() else None
    check_role(role, branch)
    check_password(password)
    if s.exec(select(DeskUser).where(DeskUser.username == username)).first() is not None:
        raise UserError(f"user {username!r} exists already")
    user = DeskUser(username=username, display_name=(display_name or "").strip() or username, role=role,
                    branch=branch, password_hash=hash_password(password))
    try:
        with s.begin_nested():  # a concurrent add of the same name: a clear refusal, not a 500
            s.add(user)
    except IntegrityError as e:
        raise UserError(f"user {username!r} exists already") from e
    log.info("desk.user_added", username=username, role=role)
    return user


def list_users(s: Session) -> list[DeskUser]:
    return list(s.exec(select(DeskUser).order_by(col(DeskUser.username))).all())


def get_user(s: Session, username: str) -> DeskUser | None:
    return s.exec(select(DeskUser).where(DeskUser.username == username.strip().lower())).first()


def existing_user(s: Session, username: str) -> DeskUser:
    user = get_user(s, username)
    if user is None:
        raise UserError(f"no user {username!r}")
    return user


def disable_user(s: Session, username: str) -> DeskUser:
    """The account can no longer sign in, and its open sessions end now."""
    user = existing_user(s, username)
    user.active = False
    s.add(user)
    s.execute(delete(DeskSession).where(col(DeskSession.user_id) == user.id))
    log.info("desk.user_disabled", username=user.username)
    return user


def enable_user(s: Session, username: str) -> DeskUser:
    user = existing_user(s, username)
    user.active = True
    s.add(user)
    log.info("desk.user_enabled", username=user.username)
    return user


def set_password(s: Session, username: str, password: str) -> DeskUser:
    """A new password (an administrator's reset); every open session of the account ends."""
    check_password(password)
    user = existing_user(s, username)
    user.password_hash = hash_password(password)
    s.add(user)
    s.execute(delete(DeskSession).where(col(DeskSession.user_id) == user.id))
    log.info("desk.password_set", username=user.username)
    return user


EXTENSION = re.compile(r"^[0-9]{2,8}$")


def set_extension(s: Session, username: str, extension: str | None) -> DeskUser:
    """J1: the SIP extension (freeswitch/directory) a call is bridged to for this operator."""
    if extension is not None and not EXTENSION.match(extension):
        raise UserError("an extension is 2 to 8 digits")
    user = existing_user(s, username)
    user.extension = extension
    s.add(user)
    return user


# ---------------------------------------------------------------- demo accounts


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    display_name: str
    password: str
    branch: str | None = None
    extension: str | None = None  # freeswitch/directory/default/operators.xml


# Documented in the README; created only with the demo world (bot/world/demo.yml).
DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("junior", "junior", "Demo junior operator", "junior-demo", extension="2001"),
    DemoUser("senior", "senior", "Demo senior operator", "senior-demo", extension="3001"),
    DemoUser("centre", "centre", "Demo measurement centre (西湖)", "centre-demo", "西湖分公司"),
    DemoUser("manager", "manager", "Demo manager hotline", "manager-demo"),
    DemoUser("admin", "admin", "Demo administrator", "admin-demo"),
    DemoUser("inspector", "inspector", "Demo quality inspector", "inspector-demo"),
    DemoUser("surveyor", "surveyor", "Demo satisfaction surveyor", "surveyor-demo"),
    DemoUser("datamanager", "datamanager", "Demo data manager", "datamanager-demo"),
    DemoUser("statistician", "statistician", "Demo statistician", "statistician-demo"),
    DemoUser("deputy", "deputy", "Demo deputy manager", "deputy-demo"),
)
DEMO_WORLD_FILE: Path = Settings.model_fields["world_file"].default


def is_demo_world(path: Path) -> bool:
    return path.resolve() == DEMO_WORLD_FILE.resolve()


def _ensure_demo_users(s: Session) -> list[str]:
    created = []
    for demo in DEMO_USERS:
        if get_user(s, demo.username) is not None:
            continue  # never reset a password or re-enable an account someone changed
        user = add_user(s, demo.username, demo.role, demo.password, display_name=demo.display_name,
                        branch=demo.branch)
        user.extension = demo.extension
        created.append(demo.username)
    return created


def ensure_demo_users(db: Database) -> list[str]:
    """One account per role for the demo world; returns the usernames created now."""
    return db.call(_ensure_demo_users)

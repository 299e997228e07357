"""Desk accounts: hashing, roles, the `users` CLI, demo accounts, the sign-in throttle,
session expiry and taking a handoff (store level, SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlmodel import select
from typer.testing import CliRunner

from bot.desk import auth
from bot.desk.cli import RoleChoice, users_app
from bot.desk.users import (
    DEMO_USERS,
    ROLES,
    UserError,
    add_user,
    check_role,
    disable_user,
    ensure_demo_users,
    get_user,
    hash_password,
    is_demo_world,
    needs_rehash,
    normalise_username,
    verify_password,
)
from bot.settings import Settings, get_settings
from bot.store import service
from bot.store.db import Database
from bot.store.models import DeskRole, DeskSession, DeskUser, Handoff

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


# ------------------------------------------------------------------ hashing


def test_hash_is_argon2id_salted_and_verifies() -> None:
    h1, h2 = hash_password("correct horse"), hash_password("correct horse")
    assert h1.startswith("$argon2id$") and h1 != h2  # salted
    assert "correct horse" not in h1
    assert verify_password(h1, "correct horse")
    assert not verify_password(h1, "correct hors")
    assert not verify_password("not a hash", "correct horse")
    assert not needs_rehash(h1)
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("pw-12345678")
    assert verify_password(weak, "pw-12345678") and needs_rehash(weak)


@pytest.mark.parametrize("raw,expected", [("alice", "alice"), ("  Bob.Smith ", "bob.smith"), ("op_7-x", "op_7-x")])
def test_usernames_are_normalised(raw: str, expected: str) -> None:
    assert normalise_username(raw) == expected


@pytest.mark.parametrize("raw", ["", " ", "-lead", "a b", "<script>", "x" * 65, "王"])
def test_bad_usernames_are_refused(raw: str) -> None:
    with pytest.raises(UserError):
        normalise_username(raw)


def test_roles() -> None:
    assert ROLES == ("junior", "senior", "centre", "manager", "admin", "inspector", "surveyor", "datamanager",
                     "statistician", "deputy")
    assert [r.value for r in RoleChoice] == [r.value for r in DeskRole]  # the CLI's copy stays in step
    for role in ROLES:
        check_role(role, "西湖分公司")
    with pytest.raises(UserError, match="role must be one of"):
        check_role("boss", None)
    with pytest.raises(UserError, match="--branch"):
        check_role("centre", None)


# ------------------------------------------------------------------ accounts in the store


def test_add_list_disable(db: Database) -> None:
    user = db.call(add_user, "Alice", "junior", "alice-password", display_name="Alice A")
    assert user.username == "alice" and user.active and user.role == "junior"
    with pytest.raises(UserError, match="exists already"):
        db.call(add_user, "ALICE", "senior", "alice-password")
    with pytest.raises(UserError, match="at least 8"):
        db.call(add_user, "bob", "senior", "short")
    centre = db.call(add_user, "xh", "centre", "centre-password", branch=" 西湖分公司 ")
    assert centre.branch == "西湖分公司" and centre.display_name == "xh"

    assert user.id is not None
    token = db.call(auth.open_session, user.id, 12)
    assert db.call(auth.session_identity, token) is not None
    db.call(disable_user, "alice")
    assert db.call(auth.session_identity, token) is None  # sessions end with the account
    assert db.call(lambda s: s.exec(select(DeskSession)).all()) == []
    assert not db.call(get_user, "alice").active  # type: ignore[union-attr]
    with pytest.raises(UserError, match="no user"):
        db.call(disable_user, "nobody")


def test_demo_users_one_per_role_and_never_reset(db: Database) -> None:
    assert ensure_demo_users(db) == ["junior", "senior", "centre", "manager", "admin", "inspector", "surveyor",
                                     "datamanager", "statistician", "deputy"]
    users = {u.username: u for u in db.call(lambda s: s.exec(select(DeskUser)).all())}
    assert sorted(u.role for u in users.values()) == sorted(ROLES)
    for demo in DEMO_USERS:
        assert verify_password(users[demo.username].password_hash, demo.password)
    assert users["centre"].branch == "西湖分公司"  # a branch of the demo world
    assert (users["junior"].extension, users["senior"].extension) == ("2001", "3001")  # freeswitch/directory

    def change(s: object) -> None:
        from sqlmodel import Session

        assert isinstance(s, Session)
        row = s.exec(select(DeskUser).where(DeskUser.username == "admin")).one()
        row.password_hash = hash_password("changed-by-someone")
        s.add(row)

    db.call(change)
    assert ensure_demo_users(db) == []
    admin = db.call(get_user, "admin")
    assert admin is not None and verify_password(admin.password_hash, "changed-by-someone")


def test_demo_world_is_the_settings_default(tmp_path: Path) -> None:
    assert is_demo_world(Settings().world_file)
    assert is_demo_world(Path("bot/world/../world/demo.yml").resolve())
    assert not is_demo_world(tmp_path / "demo.yml")


# ------------------------------------------------------------------ the CLI


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("HOTLINE_DATABASE_URL", url)
    get_settings.cache_clear()
    db = Database(url)
    try:
        yield db
    finally:
        db.dispose()
        get_settings.cache_clear()


def test_cli_add_list_disable(cli_db: Database) -> None:
    runner = CliRunner()
    added = runner.invoke(users_app, ["add", "Wang", "--role", "junior", "--name", "王 小明", "--password-stdin"],
                          input="a-long-password\n")
    assert added.exit_code == 0, added.output
    assert "added wang (junior)" in added.output and "a-long-password" not in added.output

    prompted = runner.invoke(users_app, ["add", "li", "--role", "centre", "--branch", "滨江分公司"],
                             input="prompted-pass\nprompted-pass\n")
    assert prompted.exit_code == 0, prompted.output
    assert "prompted-pass" not in prompted.output  # the prompt hides what is typed
    li = cli_db.call(get_user, "li")
    assert li is not None and verify_password(li.password_hash, "prompted-pass") and li.branch == "滨江分公司"

    dup = runner.invoke(users_app, ["add", "wang", "--role", "senior", "--password-stdin"], input="another-pass\n")
    assert dup.exit_code == 1 and "exists already" in dup.output
    short = runner.invoke(users_app, ["add", "zhao", "--role", "admin", "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least 8" in short.output
    no_branch = runner.invoke(users_app, ["add", "zhou", "--role", "centre", "--password-stdin"], input="centre-pass\n")
    assert no_branch.exit_code == 1 and "--branch" in no_branch.output
    bad_role = runner.invoke(users_app, ["add", "sun", "--role", "boss", "--password-stdin"], input="whatever-pass\n")
    assert bad_role.exit_code == 2 and "boss" in bad_role.output
    bad_name = runner.invoke(users_app, ["add", "a b", "--role", "junior", "--password-stdin"], input="whatever-pass\n")
    assert bad_name.exit_code == 1 and "username" in bad_name.output

    listed = runner.invoke(users_app, ["list"])
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert any(line.startswith("li ") and "centre" in line and "滨江分公司" in line for line in lines)
    assert any(line.startswith("wang ") and "junior" in line and "yes" in line and "王 小明" in line for line in lines)
    assert not any(name in listed.output for name in ("zhao", "zhou", "sun"))
    assert "$argon2" not in listed.output

    disabled = runner.invoke(users_app, ["disable", "wang"])
    assert disabled.exit_code == 0 and "disabled wang" in disabled.output
    assert any(line.startswith("wang ") and " no " in line for line in runner.invoke(users_app, ["list"]).output.splitlines())
    missing = runner.invoke(users_app, ["disable", "nobody"])
    assert missing.exit_code == 1 and "no user" in missing.output


def test_cli_enable_password_and_extension(cli_db: Database) -> None:
    runner = CliRunner()
    assert runner.invoke(users_app, ["add", "wu", "--role", "junior", "--password-stdin"],
                         input="first-password\n").exit_code == 0
    cli_db.call(lambda s: auth.open_session(s, cli_db.call(get_user, "wu").id, 1))  # type: ignore[union-attr]
    reset = runner.invoke(users_app, ["password", "wu", "--password-stdin"], input="second-password\n")
    assert reset.exit_code == 0 and "sessions ended" in reset.output and "second-password" not in reset.output
    wu = cli_db.call(get_user, "wu")
    assert wu is not None and verify_password(wu.password_hash, "second-password")
    assert not verify_password(wu.password_hash, "first-password")
    assert cli_db.call(lambda s: s.exec(select(DeskSession)).all()) == []
    short = runner.invoke(users_app, ["password", "wu", "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least 8" in short.output
    assert runner.invoke(users_app, ["disable", "wu"]).exit_code == 0
    enabled = runner.invoke(users_app, ["enable", "wu"])
    assert enabled.exit_code == 0 and cli_db.call(get_user, "wu").active  # type: ignore[union-attr]
    ext = runner.invoke(users_app, ["extension", "wu", "1001"])
    assert ext.exit_code == 0 and "extension 1001" in ext.output
    assert any(" 1001 " in line for line in runner.invoke(users_app, ["list"]).output.splitlines())
    bad = runner.invoke(users_app, ["extension", "wu", "user/1001"])
    assert bad.exit_code == 1 and "2 to 8 digits" in bad.output
    cleared = runner.invoke(users_app, ["extension", "wu"])
    assert cleared.exit_code == 0 and cli_db.call(get_user, "wu").extension is None  # type: ignore[union-attr]
    for command in (["enable", "nobody"], ["password", "nobody", "--password-stdin"], ["extension", "nobody", "12"]):
        missing = runner.invoke(users_app, command, input="a-long-password\n")
        assert missing.exit_code == 1 and "no user" in missing.output, command


def test_cli_is_registered_under_users() -> None:
    from bot.cli import app

    result = CliRunner().invoke(app, ["users", "--help"])
    assert result.exit_code == 0 and "add" in result.output and "disable" in result.output


# ------------------------------------------------------------------ throttle and sessions


def test_fifth_failure_within_15_minutes_locks_for_15_minutes(db: Database) -> None:
    for i in range(4):
        assert db.call(auth.record_failure, "alice", now=T0 + timedelta(minutes=i)) is None
    assert db.call(auth.login_check, "alice", now=T0 + timedelta(minutes=4)).locked_until is None
    locked = db.call(auth.record_failure, "alice", now=T0 + timedelta(minutes=5))
    assert locked == T0 + timedelta(minutes=20)
    assert db.call(auth.login_check, "alice", now=T0 + timedelta(minutes=19, seconds=59)).locked_until == locked
    assert db.call(auth.login_check, "bob", now=T0 + timedelta(minutes=6)).locked_until is None  # per username
    assert db.call(auth.login_check, "alice", now=T0 + timedelta(minutes=20, seconds=1)).locked_until is None
    # After the lock, counting starts again from zero.
    assert db.call(auth.record_failure, "alice", now=T0 + timedelta(minutes=21)) is None


def test_failures_spread_over_more_than_15_minutes_do_not_lock(db: Database) -> None:
    for i in range(10):
        assert db.call(auth.record_failure, "alice", now=T0 + timedelta(minutes=4 * i)) is None


def test_success_forgets_the_failures(db: Database) -> None:
    user = db.call(add_user, "alice", "junior", "alice-password")
    assert user.id is not None
    for i in range(4):
        db.call(auth.record_failure, "alice", now=T0 + timedelta(seconds=i))
    db.call(auth.login_succeeded, user.id, "alice", 12, now=T0 + timedelta(seconds=5))
    for i in range(4):
        assert db.call(auth.record_failure, "alice", now=T0 + timedelta(seconds=10 + i)) is None


def test_sessions_expire_and_store_only_a_hash(db: Database) -> None:
    user = db.call(add_user, "alice", "senior", "alice-password")
    assert user.id is not None
    token = db.call(auth.open_session, user.id, 1.5, now=T0)
    rows = db.call(lambda s: s.exec(select(DeskSession)).all())
    assert len(rows) == 1 and rows[0].token_hash == auth.token_hash(token) and token not in rows[0].token_hash
    who = db.call(auth.session_identity, token, now=T0 + timedelta(minutes=89))
    assert who is not None and who.username == "alice" and who.role == "senior" and len(who.csrf_token) >= 40
    assert db.call(auth.session_identity, "x" + token, now=T0) is None
    assert db.call(auth.session_identity, token, now=T0 + timedelta(minutes=91)) is None
    assert db.call(lambda s: s.exec(select(DeskSession)).all()) == []  # an expired session is removed


# ------------------------------------------------------------------ taking a handoff


def _queue(db: Database, conversation_id: str = "c1") -> int:
    return db.call(service.queue_handoff, service.HandoffData(
        conversation_id=conversation_id, channel="webchat", language="zh", reason="caller_request",
        transcript=[{"role": "user", "text": "人工"}])).handoff_id


def test_take_handoff_once(db: Database) -> None:
    hid = _queue(db)
    row = db.call(service.take_handoff, hid, "alice", now=T0)
    assert row.state == "taken" and row.taken_by == "alice" and row.taken_at == T0
    with pytest.raises(service.Conflict, match="already taken by alice"):
        db.call(service.take_handoff, hid, "bob")
    with pytest.raises(service.NotFound):
        db.call(service.take_handoff, hid + 100, "bob")
    gone = _queue(db, "c2")
    db.call(lambda s: s.execute(sa.update(Handoff).where(Handoff.id == gone).values(state="abandoned")))  # type: ignore[arg-type]
    with pytest.raises(service.Conflict, match="abandoned") as err:
        db.call(service.take_handoff, gone, "bob")
    assert err.value.code == "not_waiting"


def test_concurrent_takes_have_one_winner(db: Database) -> None:
    hid = _queue(db)
    barrier = threading.Barrier(6)
    outcomes: dict[str, str] = {}

    def attempt(name: str) -> None:
        barrier.wait()
        try:
            db.call(service.take_handoff, hid, name)
            outcomes[name] = "won"
        except service.Conflict as e:
            outcomes[name] = e.reason

    threads = [threading.Thread(target=attempt, args=(f"op{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [n for n, o in outcomes.items() if o == "won"]
    assert len(winners) == 1 and len(outcomes) == 6
    assert all(o == f"handoff {hid} was already taken by {winners[0]}" for n, o in outcomes.items() if n not in winners)
    row = db.call(lambda s: s.get(Handoff, hid))
    assert row is not None and row.taken_by == winners[0] and row.transcript == [{"role": "user", "text": "人工"}]


def test_migration_0003_goes_down_and_up(tmp_path: Path) -> None:
    from alembic import command

    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.upgrade()
    cfg = db.alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    inspector = sa.inspect(db.engine)
    assert "desk_user" not in inspector.get_table_names()
    assert "taken_by" not in {c["name"] for c in inspector.get_columns("handoff")}
    db.upgrade()
    assert {"desk_user", "desk_session", "desk_login_throttle"} <= set(sa.inspect(db.engine).get_table_names())
    db.dispose()

"""`python -m bot users add|list|disable|enable|password|extension`: desk accounts."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import TYPE_CHECKING, TypeVar

import typer

if TYPE_CHECKING:
    from bot.store.db import Database

users_app = typer.Typer(no_args_is_help=True, add_completion=False)

T = TypeVar("T")


class RoleChoice(str, Enum):
    """bot.store.models.DeskRole, without importing the store for `--help`."""

    junior = "junior"
    senior = "senior"
    centre = "centre"
    manager = "manager"
    admin = "admin"
    inspector = "inspector"
    surveyor = "surveyor"
    datamanager = "datamanager"
    statistician = "statistician"
    deputy = "deputy"


@contextmanager
def _database() -> Iterator[Database]:
    from bot.settings import get_settings
    from bot.store.db import Database

    db = Database.from_settings(get_settings())
    try:
        db.upgrade()  # the accounts table may be newer than the database
        yield db
    finally:
        db.dispose()


def _call(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    from bot.desk.users import UserError

    with _database() as db:
        try:
            return db.call(fn, *args, **kwargs)
        except UserError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from e


@users_app.command("add")
def add_command(
    username: str = typer.Argument(..., help="Sign-in name: a-z 0-9 . _ - (stored in lower case)."),
    role: RoleChoice = typer.Option(..., "--role", help="The post: what the account sees and does."),
    branch: str = typer.Option(None, "--branch", help="The branch (needed for a measurement centre)."),
    name: str = typer.Option(None, "--name", help="Display name (default: the username)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin's first line."),
) -> None:
    """Create a desk account. The password is asked for (hidden) unless --password-stdin."""
    from bot.desk.users import UserError, add_user, check_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        check_password(password)  # before touching the database
    except UserError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    user = _call(add_user, username, role.value, password, display_name=name, branch=branch)
    typer.echo(f"added {user.username} ({user.role}{', ' + user.branch if user.branch else ''})")


@users_app.command("list")
def list_command() -> None:
    """List the desk accounts."""
    from bot.desk.users import list_users

    users = _call(list_users)
    if not users:
        typer.echo("no desk accounts")
        return
    typer.echo(f"{'username':<20} {'role':<8} {'active':<6} {'branch':<16} {'ext':<8} name")
    for u in users:
        typer.echo(f"{u.username:<20} {u.role:<8} {'yes' if u.active else 'no':<6} {u.branch or '-':<16} "
                   f"{u.extension or '-':<8} {u.display_name}")


@users_app.command("disable")
def disable_command(username: str = typer.Argument(..., help="The account to disable.")) -> None:
    """Disable an account: it can no longer sign in, and its sessions end now."""
    from bot.desk.users import disable_user

    user = _call(disable_user, username)
    typer.echo(f"disabled {user.username}")


@users_app.command("enable")
def enable_command(username: str = typer.Argument(..., help="The account to enable again.")) -> None:
    """Let a disabled account sign in again."""
    from bot.desk.users import enable_user

    user = _call(enable_user, username)
    typer.echo(f"enabled {user.username}")


@users_app.command("password")
def password_command(
    username: str = typer.Argument(..., help="The account."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin's first line."),
) -> None:
    """Set a new password (a reset); the account's open sessions end."""
    from bot.desk.users import set_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    user = _call(set_password, username, password)
    typer.echo(f"password set for {user.username}; its sessions ended")


@users_app.command("extension")
def extension_command(
    username: str = typer.Argument(..., help="The operator."),
    extension: str = typer.Argument(None, help="The SIP extension (freeswitch/directory); omit to clear."),
) -> None:
    """The phone a handed-off call is bridged to when this operator takes it (J1)."""
    from bot.desk.users import set_extension

    user = _call(set_extension, username, extension)
    typer.echo(f"{user.username}: extension {user.extension or 'none'}")

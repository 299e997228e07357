"""Who may see what: one rule for desk pages and APIs alike (issue 14 item 2).

Every reader is a post (a desk account's role, with its branch for centre staff), the
staff API token (``api``) or the bot's own services (``service``). What each may read:

============================  =====================================  =======================
post                          tickets (and what hangs on them:        hotline-wide personal
                              reports, tests, notes, attachments,     records (handoffs,
                              events, workflow, tasks about them)     outcomes, surveys,
                                                                      outbound calls, lines)
============================  =====================================  =======================
centre (measurement centre)   its own branch's only (none without a   no
                              branch: an account not set up)
junior, senior, manager,      every branch: the hotline serves them   yes
admin, inspector, surveyor,   all, and these posts work hotline-wide
datamanager, statistician,
deputy
api (staff token), service,   every branch                            yes
the bot's own jobs
anything else                 none                                    no
============================  =====================================  =======================

What a post may *do* (and which pages it opens) is still decided by the page or action
(``require_role``, ``workflow.ACTIONS``); this module decides only what it may *read*.
Something out of scope is reported as not there (404), never as forbidden, so ids of
another branch cannot be probed; lists leave it out. The store applies it:
:func:`ticket_conditions` in queries, :func:`sees_ticket` on single rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

CENTRE = "centre"
ADMIN = "admin"
API = "api"
SERVICE = "service"
SYSTEM = ("system", "scheduler")  # the bot itself: the deadline watch, the report scheduler
HOTLINE_POSTS = frozenset({"junior", "senior", "manager", ADMIN, "inspector", "surveyor", "datamanager",
                           "statistician", "deputy", API, SERVICE, *SYSTEM})


@dataclass(frozen=True)
class Scope:
    """What one reader may see. ``tickets``: ``all``, ``branch`` (``branch`` only) or ``none``."""

    role: str
    branch: str | None
    tickets: Literal["all", "branch", "none"]
    personal: bool

    @property
    def everything(self) -> bool:
        return self.tickets == "all"


def scope_for(role: str, branch: str | None = None) -> Scope:
    if role == CENTRE:
        return Scope(role, branch, "branch" if branch else "none", personal=False)
    if role in HOTLINE_POSTS:
        return Scope(role, None, "all", personal=True)
    return Scope(role, None, "none", personal=False)


SERVICE_SCOPE = scope_for(SERVICE)


def of(reader: Any) -> Scope:
    """The scope of anything with ``role`` and ``branch`` (a desk Identity, a workflow Actor)."""
    if isinstance(reader, Scope):
        return reader
    return scope_for(str(reader.role), getattr(reader, "branch", None))


def sees_ticket(scope: Scope, ticket_branch: str | None) -> bool:
    if scope.tickets == "all":
        return True
    return scope.tickets == "branch" and ticket_branch is not None and ticket_branch == scope.branch


def ticket_conditions(scope: Scope, ticket: Any = None) -> list[Any]:
    """SQL conditions on the ticket table (or ``ticket``, an alias) for a query's WHERE."""
    from sqlalchemy import false

    from bot.store.models import Ticket

    table = ticket if ticket is not None else Ticket
    if scope.tickets == "all":
        return []
    if scope.tickets == "branch":
        return [table.branch == scope.branch]
    return [false()]


def sees_task(scope: Scope, task_role: str, task_branch: str | None) -> bool:
    """A desk task is for one post (and one branch, for a centre); admin and the API see all."""
    if scope.role in (ADMIN, API, SERVICE, *SYSTEM):
        return True
    if task_role != scope.role:
        return False
    return scope.role != CENTRE or (task_branch is not None and task_branch == scope.branch)


def reads_personal(scope: Scope) -> bool:
    """Handoffs, outcomes, surveys, outbound calls, line owners: the hotline's own records."""
    return scope.personal

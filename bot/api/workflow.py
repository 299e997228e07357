"""The desk's actions over HTTP, for other systems (issue 4, §7): the same workflow table,
the same roles, the same refusals as the desk pages.

Authentication: ``POST /api/session`` with a desk account's username and password
returns a bearer token (a desk session, with the same throttle and lockout as the
sign-in form); every other route here takes ``Authorization: Bearer <token>`` and acts
with that account's role. The staff API token (``HOTLINE_STAFF_API_TOKEN``) acts as
``api``: TMF621-level moves and notes only.

    GET  /api/workflow                       the action table (names, posts, sub-steps)
    GET  /api/tickets/{id}/workflow          sub-step, version, what I may do now
    POST /api/tickets/{id}/actions/{action}  {"version", "reason", "params"} → the ticket
    GET  /api/tasks[?kind=]                  my post's open tasks
    GET  /api/tasks/{id}                     a task (an escalation with its compensation check)
    POST /api/tasks/{id}/grade               S3 {"grade": "correct"|"incorrect", "note"}
    POST /api/tasks/{id}/decision            M1–M3 {"finding", "explanation", "grantCompensation"}
    POST /api/tasks/{id}/ack                 a centre has read a notice
"""

from __future__ import annotations

from typing import Any, Literal

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from bot import scope as scopes
from bot.api.auth import actor_of
from bot.api.errors import ApiError, parse_body, path_id, query_params
from bot.api.tickets import TICKET_ID, render_ticket
from bot.desk import auth
from bot.settings import SETTINGS_KEY
from bot.store import service, workflow
from bot.store.db import DB_KEY
from bot.store.models import DeskTask, DeskTaskKind, LineRow, Ticket
from bot.store.workflow import Actor

log = structlog.get_logger(__name__)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionIn(_In):
    username: str = Field(max_length=200)
    password: str = Field(max_length=4096)


class ActionIn(_In):
    version: int | None = Field(default=None, ge=1)
    reason: str | None = Field(default=None, max_length=2000)
    params: dict[str, str] = Field(default_factory=dict)


class GradeIn(_In):
    grade: Literal["correct", "incorrect"]
    note: str | None = Field(default=None, max_length=2000)


class DecisionIn(_In):
    finding: Literal["ours", "not_ours"]
    explanation: str = Field(min_length=1, max_length=2000)
    grantCompensation: bool = False


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _refuse(exc: service.ServiceError) -> ApiError:
    """A role refusal is 403, everything else keeps its own status."""
    if exc.code == "forbidden_action":
        return ApiError(403, exc.code, exc.reason)
    return ApiError(exc.status, exc.code, exc.reason)


async def open_session(request: web.Request) -> web.Response:
    body = await parse_body(request, SessionIn)
    result = await auth.sign_in(request, body.username, body.password)
    if result.token is None:
        extra = {"lockedUntil": result.locked_until.isoformat()} if result.locked_until else {}
        raise ApiError(result.status, "sign_in_refused", result.error or "refused", **extra)
    who = await request.app[DB_KEY].run(auth.session_identity, result.token)
    assert who is not None
    return web.json_response({"token": result.token, "username": who.username, "role": who.role,
                              "branch": who.branch}, status=201)


async def close_session(request: web.Request) -> web.Response:
    await actor_of(request)
    token = request.headers["Authorization"].removeprefix("Bearer ").strip()
    await request.app[DB_KEY].run(auth.close_session, token)
    return web.json_response({"closed": True})


def _action_dict(a: workflow.Action) -> dict[str, Any]:
    return {"name": a.name, "step": a.step, "label": {"zh": a.label_zh, "en": a.label_en},
            "roles": sorted(a.roles), "from": sorted(a.from_steps), "to": a.to_step,
            "needsReason": a.needs_reason, "params": list(a.params)}


async def workflow_table(_request: web.Request) -> web.Response:
    return web.json_response({
        "subSteps": {k: {"status": v} for k, v in workflow.STATUS_OF.items()},
        "actions": [_action_dict(a) for a in workflow.ACTIONS.values()],
        "statusTransitions": {k: sorted(v) for k, v in workflow.ALLOWED_STATUS_TRANSITIONS.items()},
    })


async def ticket_workflow(request: web.Request) -> web.Response:
    actor = await actor_of(request)
    ticket_id = request.match_info["id"]

    def read(s: Any) -> dict[str, Any]:
        t = service.get_ticket_row(s, ticket_id, scopes.of(actor))  # out of scope: 404
        return {"id": t.id, "status": t.status, "subStep": workflow.sub_step_of(t), "version": t.version,
                "actions": [_action_dict(a) for a in workflow.available_actions(t, actor)],
                "faultClasses": workflow.fault_classes(s)}

    body = await request.app[DB_KEY].run(read)
    return web.json_response(body, headers={"ETag": f'W/"{body["version"]}"'})


async def perform_action(request: web.Request) -> web.Response:
    actor = await actor_of(request)
    body = await parse_body(request, ActionIn)
    ticket_id, name = request.match_info["id"], request.match_info["action"]

    def run(s: Any) -> service.TicketView:
        workflow.perform(s, ticket_id, name, actor, reason=body.reason, expected_version=body.version,
                         params=body.params)
        return service.get_ticket(s, ticket_id)

    try:
        view = await request.app[DB_KEY].run(run)
    except service.ServiceError as exc:
        raise _refuse(exc) from exc
    rendered = render_ticket(view, _base_url(request))
    return web.json_response(rendered, headers={"ETag": f'W/"{view.ticket.version}"'})


def _visible_task(task: DeskTask, actor: Actor) -> bool:
    return scopes.sees_task(scopes.of(actor), task.role, task.branch)


class TaskListQuery(_In):
    kind: DeskTaskKind | None = None


async def list_tasks(request: web.Request) -> web.Response:
    actor = await actor_of(request)
    query = query_params(request, TaskListQuery)
    kind = query.kind.value if query.kind is not None else None

    def read(s: Any) -> list[dict[str, Any]]:
        branch = actor.branch if actor.role == workflow.C else None
        return [workflow.task_dict(t) for t in workflow.open_tasks(s, actor.role, kind=kind, branch=branch)]

    return web.json_response(await request.app[DB_KEY].run(read))


def _task_id(request: web.Request) -> int:
    return path_id(request, "task")


async def get_task(request: web.Request) -> web.Response:
    actor = await actor_of(request)
    task_id = _task_id(request)
    rules = workflow.CompensationRules.from_settings(request.app[SETTINGS_KEY])

    def read(s: Any) -> dict[str, Any]:
        task = s.get(DeskTask, task_id)
        if task is None or not _visible_task(task, actor):
            raise service.NotFound(f"no task {task_id}")
        out = workflow.task_dict(task)
        if task.kind == "escalation" and task.ticket_id:
            t = s.get(Ticket, task.ticket_id)
            line = s.get(LineRow, t.fault_number) if t is not None and t.fault_number else None
            if t is not None:
                out["compensationCheck"] = workflow.compensation_for(t, line, rules).as_dict()
        return out

    return web.json_response(await request.app[DB_KEY].run(read))


async def grade_task(request: web.Request) -> web.Response:
    actor = await actor_of(request)
    task_id = _task_id(request)
    body = await parse_body(request, GradeIn)
    try:
        task = await request.app[DB_KEY].run(workflow.grade_transfer, task_id, actor, body.grade, body.note,
                                             timezone=request.app[SETTINGS_KEY].timezone)
    except service.ServiceError as exc:
        raise _refuse(exc) from exc
    return web.json_response(workflow.task_dict(task))


async def decide_task(request: web.Request) -> web.Response:
    actor = await actor_of(request)
    task_id = _task_id(request)
    body = await parse_body(request, DecisionIn)
    rules = workflow.CompensationRules.from_settings(request.app[SETTINGS_KEY])
    try:
        task = await request.app[DB_KEY].run(
            workflow.decide_escalation, task_id, actor, finding=body.finding,
            explanation=body.explanation, rules=rules, grant_compensation=body.grantCompensation)
    except service.ServiceError as exc:
        raise _refuse(exc) from exc
    return web.json_response(workflow.task_dict(task))


async def ack_task(request: web.Request) -> web.Response:
    actor = await actor_of(request)
    try:
        task = await request.app[DB_KEY].run(workflow.acknowledge_notice, _task_id(request), actor)
    except service.ServiceError as exc:
        raise _refuse(exc) from exc
    return web.json_response(workflow.task_dict(task))


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/session", open_session)
    app.router.add_delete("/api/session", close_session)
    app.router.add_get("/api/workflow", workflow_table)
    app.router.add_get(f"/api/tickets/{TICKET_ID}/workflow", ticket_workflow)
    app.router.add_post(f"/api/tickets/{TICKET_ID}/actions/{{action:[a-z_]{{1,40}}}}", perform_action)
    app.router.add_get("/api/tasks", list_tasks)
    app.router.add_get("/api/tasks/{id}", get_task)
    app.router.add_post("/api/tasks/{id}/grade", grade_task)
    app.router.add_post("/api/tasks/{id}/decision", decide_task)
    app.router.add_post("/api/tasks/{id}/ack", ack_task)

"""Refusals of the store's services, each with a reason a person can read."""

from __future__ import annotations


class ServiceError(Exception):
    """A refused request, with a reason a person can read. ``status`` is the HTTP hint."""

    status = 400
    code = "bad_request"

    def __init__(self, reason: str, *, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class IllegalTransition(Conflict):
    code = "illegal_transition"



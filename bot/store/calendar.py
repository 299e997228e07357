"""The world's working calendars, as loaded (bot/world/calendar.py says what they mean).

One row per calendar: ``service`` is the customer-service centre's own (the world
file's ``working_hours``). A world load replaces them with the inventory.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, Session, SQLModel

from bot.world.calendar import DEFAULT_WORKING_HOURS, WorkingCalendar, WorkingHours

SERVICE_CALENDAR = "service"


class WorkingCalendarRow(SQLModel, table=True):
    __tablename__ = "working_calendar"

    id: str = Field(primary_key=True, max_length=64)
    hours: dict[str, Any] = Field(sa_type=JSON)  # WorkingHours, as JSON


def service_calendar(s: Session, timezone: str) -> WorkingCalendar:
    """The centre's calendar from the world last loaded, else the default one."""
    row = s.get(WorkingCalendarRow, SERVICE_CALENDAR)
    hours = WorkingHours.model_validate(row.hours) if row is not None else DEFAULT_WORKING_HOURS
    return WorkingCalendar(hours, timezone)

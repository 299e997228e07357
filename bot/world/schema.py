"""The world file's schema (design.md §3.10). One YAML file describes everything the
bot and the line-test simulator need to know about the operator's network. Numbers are
canonical digit strings: fixed lines with area code (``057187654321``), mobiles as 11
digits (``13800138000``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.world.calendar import WorkingHours

_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1),
          "m": timedelta(minutes=1), "s": timedelta(seconds=1)}
_RELATIVE = re.compile(r"([+-])\s*((?:\d+(?:\.\d+)?\s*[wdhms]\s*)+)")
_TERM = re.compile(r"(\d+(?:\.\d+)?)\s*([wdhms])")


def relative_time(value: Any, now: datetime) -> Any:
    """``-5h``, ``+30d``, ``-1d2h30m`` (w d h m s) → ``now`` moved by that much; ``now`` → now.
    Anything else is left for pydantic's own datetime parsing (absolute times keep working)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text == "now":
        return now
    if not text or text[0] not in "+-":
        return value
    m = _RELATIVE.fullmatch(text)
    if m is None:
        raise ValueError(f"{value!r} is not a time relative to loading: write e.g. -5h, +30d, -1d2h30m "
                         "(w, d, h, m = minutes, s), or an absolute time like 2026-06-03T09:12:00+08:00")
    delta = sum((float(n) * _UNITS[u] for n, u in _TERM.findall(m.group(2))), timedelta())
    return now + delta if m.group(1) == "+" else now - delta


def _world_time(value: Any, info: ValidationInfo) -> Any:
    context = info.context if isinstance(info.context, dict) else {}
    now = context.get("now")
    return relative_time(value, now if isinstance(now, datetime) else datetime.now(UTC))


# A time in the world file: absolute (ISO 8601 with zone) or relative to when the file is
# loaded (``opened: -5h``), so a demo world stays fresh (issue 14 item 6).
WorldTime = Annotated[datetime, BeforeValidator(_world_time)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LineTestResultCode(str, Enum):
    """What the line-test unit can report (design.md §3.9)."""

    ok = "ok"
    open_circuit = "open_circuit"
    short_circuit = "short_circuit"
    earth_fault = "earth_fault"
    high_resistance = "high_resistance"
    foreign_voltage = "foreign_voltage"
    cpe_fault = "cpe_fault"  # customer equipment
    cannot_test = "cannot_test"  # e.g. mobile numbers, unit failure


class Bilingual(_Strict):
    zh: str
    en: str


def _digits(value: str) -> str:
    if not (value.isascii() and value.isdigit()):
        raise ValueError("must be digits only (canonical form, e.g. 057187654321)")
    return value


class MeasurementCentre(_Strict):
    id: str
    name: str
    branch: str
    completion_deadline_hours: float = Field(default=24, gt=0)
    # U1-U2: absent, the completion deadline counts every hour; present, only these
    # working hours (bot/world/calendar.py's shape, in HOTLINE_TIMEZONE).
    working_hours: WorkingHours | None = None


class Exchange(_Strict):
    prefix: str  # the leading digits of canonical numbers served by this exchange
    name: str
    branch: str

    _check_prefix = field_validator("prefix")(_digits)


class LineTestBehaviour(_Strict):
    """How the simulated line-test unit answers for this line."""

    result: LineTestResultCode = LineTestResultCode.ok
    busy_s: float = Field(default=0, ge=0)  # unit busy for this long before the test starts
    duration_s: float | None = Field(default=None, ge=0)  # overrides the default test time


class Line(_Strict):
    number: str
    owner: str
    big_customer: bool = False
    customer_type: str = "residential"  # residential | business | government …
    branch: str | None = None  # defaults to the exchange's branch
    repaired: bool = False  # A5: a fault on this line was just repaired → V4 (repaired)
    line_test: LineTestBehaviour = LineTestBehaviour()

    _check_number = field_validator("number")(_digits)


class EngineeringWork(_Strict):
    """A5: lines affected by engineering works hear V4 (engineering variant)."""

    id: str
    description: Bilingual
    prefixes: list[str] = []
    lines: list[str] = []
    until: WorldTime | None = None

    @model_validator(mode="after")
    def _targets(self) -> EngineeringWork:
        if not self.prefixes and not self.lines:
            raise ValueError("an engineering work needs prefixes or lines")
        for p in [*self.prefixes, *self.lines]:
            _digits(p)
        return self


class LastTest(_Strict):
    result: LineTestResultCode
    at: WorldTime


class OpenFault(_Strict):
    """A6–A7: an open fault ticket already on a line, with the reports made so far."""

    id: str
    line: str
    reports: int = Field(default=1, ge=1)
    opened: WorldTime
    symptom: str = "other"
    description: str = ""
    repairman_message: Bilingual | None = None
    last_test: LastTest | None = None
    deadline: WorldTime | None = None

    _check_line = field_validator("line")(_digits)


class World(_Strict):
    version: int = 1
    name: str = "world"
    measurement_centres: list[MeasurementCentre] = []
    fault_classes: list[str] = []
    exchanges: list[Exchange]
    lines: list[Line] = []
    engineering_works: list[EngineeringWork] = []
    open_faults: list[OpenFault] = []
    # The customer-service centre's working hours (D2 deadlines); bot/world/calendar.py.
    working_hours: WorkingHours | None = None

    @model_validator(mode="after")
    def _consistent(self) -> World:
        numbers = [line.number for line in self.lines]
        dupes = {n for n in numbers if numbers.count(n) > 1}
        if dupes:
            raise ValueError(f"lines listed twice: {sorted(dupes)}")
        fault_ids = [f.id for f in self.open_faults]
        if len(set(fault_ids)) != len(fault_ids):
            raise ValueError("open_faults ids must be unique")
        return self

    def exchange_for(self, number: str) -> Exchange | None:
        """The exchange whose prefix is the longest match for ``number``."""
        matches = [e for e in self.exchanges if number.startswith(e.prefix)]
        return max(matches, key=lambda e: len(e.prefix), default=None)

    def line(self, number: str) -> Line | None:
        return next((line for line in self.lines if line.number == number), None)

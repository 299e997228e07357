"""The world file's schema (design.md §3.10). One YAML file describes everything the
bot and the line-test simulator need to know about the operator's network. Numbers are
canonical digit strings: fixed lines with area code (``057187654321``), mobiles as 11
digits (``13800138000``)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.world.calendar import WorkingHours


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
    until: datetime | None = None

    @model_validator(mode="after")
    def _targets(self) -> EngineeringWork:
        if not self.prefixes and not self.lines:
            raise ValueError("an engineering work needs prefixes or lines")
        for p in [*self.prefixes, *self.lines]:
            _digits(p)
        return self


class LastTest(_Strict):
    result: LineTestResultCode
    at: datetime


class OpenFault(_Strict):
    """A6–A7: an open fault ticket already on a line, with the reports made so far."""

    id: str
    line: str
    reports: int = Field(default=1, ge=1)
    opened: datetime
    symptom: str = "other"
    description: str = ""
    repairman_message: Bilingual | None = None
    last_test: LastTest | None = None
    deadline: datetime | None = None

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

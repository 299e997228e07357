"""Loading a parsed world into the stores (design.md §3.10).

One transaction replaces the inventory and the world's own tickets, so a load either
happens completely or not at all; files are parsed (and refused) before anything is
touched. Tickets made by conversations survive a reload unless ``reset`` is asked for.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import structlog
import yaml
from sqlalchemy import delete
from sqlmodel import Session

from bot.settings import Settings, get_settings
from bot.store import service
from bot.store.calendar import SERVICE_CALENDAR, WorkingCalendarRow
from bot.store.db import Database
from bot.store.models import (
    INVENTORY_TABLES,
    EngineeringWorkRow,
    EngineeringWorkTarget,
    ExchangeRow,
    FaultClassRow,
    LineRow,
    MeasurementCentreRow,
)
from bot.world.schema import World

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class LoadSummary:
    name: str
    exchanges: int
    lines: int
    engineering_works: int
    open_faults: int
    measurement_centres: int
    fault_classes: int
    reset: bool

    def __str__(self) -> str:
        return (
            f"world {self.name!r}: {self.exchanges} exchanges, {self.lines} lines, "
            f"{self.engineering_works} engineering works, {self.open_faults} open faults, "
            f"{self.measurement_centres} measurement centres, {self.fault_classes} fault classes"
            + (" (all tickets reset)" if self.reset else "")
        )


def apply_world(s: Session, world: World, reset: bool = False) -> LoadSummary:
    """Replace inventory and world tickets inside the caller's transaction."""
    if reset:
        service.delete_all_conversation_data(s)
    else:
        service.delete_world_tickets(s)
    for table in INVENTORY_TABLES:  # children first (targets before works)
        s.execute(delete(table))
    s.execute(delete(WorkingCalendarRow))
    s.flush()
    if world.working_hours is not None:
        s.add(WorkingCalendarRow(id=SERVICE_CALENDAR, hours=world.working_hours.model_dump(mode="json")))
    for e in world.exchanges:
        s.add(ExchangeRow(prefix=e.prefix, name=e.name, branch=e.branch))
    for line in world.lines:
        s.add(LineRow(
            number=line.number, owner=line.owner, big_customer=line.big_customer,
            customer_type=line.customer_type, branch=line.branch, repaired=line.repaired,
            line_test=line.line_test.model_dump(mode="json"),
        ))
    for c in world.measurement_centres:
        calendar = None
        if c.working_hours is not None:  # its zone fixed now: the deadline watch runs in other processes
            calendar = {**c.working_hours.model_dump(mode="json"), "timezone": get_settings().timezone}
        s.add(MeasurementCentreRow(id=c.id, name=c.name, branch=c.branch,
                                   completion_deadline_hours=c.completion_deadline_hours,
                                   working_hours=calendar))
    for name in dict.fromkeys(world.fault_classes):  # keep order, drop repeats
        s.add(FaultClassRow(name=name))
    for w in world.engineering_works:
        s.add(EngineeringWorkRow(id=w.id, description_zh=w.description.zh, description_en=w.description.en,
                                 until=w.until))
    s.flush()  # the works exist before their targets point at them
    for w in world.engineering_works:
        for prefix in dict.fromkeys(w.prefixes):
            s.add(EngineeringWorkTarget(work_id=w.id, kind="prefix", value=prefix))
        for number in dict.fromkeys(w.lines):
            s.add(EngineeringWorkTarget(work_id=w.id, kind="line", value=number))
    s.flush()
    for fault in world.open_faults:  # after lines and exchanges: branch and priority come from them
        service.add_world_fault(s, fault)
    return LoadSummary(
        name=world.name, exchanges=len(world.exchanges), lines=len(world.lines),
        engineering_works=len(world.engineering_works), open_faults=len(world.open_faults),
        measurement_centres=len(world.measurement_centres), fault_classes=len(set(world.fault_classes)),
        reset=reset,
    )


def load_world(
    db: Database,
    world: World,
    reset: bool = False,
    *,
    text: str | None = None,
    current_file: Path | None = None,
) -> LoadSummary:
    """Load ``world`` atomically, then publish it as the current world file.

    ``text`` is the YAML as written (comments kept); without it the model is dumped.
    The copy at ``current_file`` (default ``settings.current_world_file``) is what the
    line-test simulator, a separate process, follows.
    """
    summary = db.call(apply_world, world, reset)
    target = current_file if current_file is not None else get_settings().current_world_file
    _write_atomically(target, text if text is not None else _dump(world))
    log.info("world_loaded", name=world.name, exchanges=summary.exchanges, lines=summary.lines,
             open_faults=summary.open_faults, reset=reset, current_file=str(target))
    return summary


async def load_world_async(
    db: Database, world: World, reset: bool = False, *, text: str | None = None, current_file: Path | None = None
) -> LoadSummary:
    """:func:`load_world` off the event loop (for the app's start-up in demo mode)."""
    return await asyncio.to_thread(load_world, db, world, reset, text=text, current_file=current_file)


def _dump(world: World) -> str:
    return yaml.safe_dump(world.model_dump(mode="json"), allow_unicode=True, sort_keys=False)


def _write_atomically(path: Path, text: str) -> None:
    """Readers never see half a file: write beside it, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".world-", suffix=".yml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_world_file(path: Path, reset: bool, settings: Settings) -> LoadSummary:
    """Parse first (a broken file never touches the store), then load atomically.
    Raises WorldFileError with every problem found, each naming its line and field."""
    from bot.world.parse import parse_world_file

    world = parse_world_file(path)
    db = Database.from_settings(settings)
    try:
        db.upgrade()
        return load_world(db, world, reset, text=path.read_text(encoding="utf-8"),
                          current_file=settings.current_world_file)
    finally:
        db.dispose()

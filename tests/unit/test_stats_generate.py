"""The benchmark's generator (`python -m bot stats generate`), small: it writes what it
says on SQLite and PostgreSQL alike, and a report over what it wrote finds its totals
(the held-out check's shape: a generated period with known totals, figures compared)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bot.stats.figures import Period, compute
from bot.stats.generate import generate
from bot.store.db import Database


def test_generated_totals_are_what_the_figures_count(db: Database) -> None:
    start = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai: every row inside March, local
    totals = generate(db, conversations=1500, seed=7, start=start, days=30, lines_per_exchange=5)
    assert totals.conversations == 1500 and sum(totals.rows.values()) > 4000
    f = db.call(compute, Period(date(2026, 3, 1), date(2026, 4, 1)), ZoneInfo("Asia/Shanghai"),
                now=datetime(2026, 5, 1, tzinfo=UTC))
    assert f["handling"]["contacts"] == totals.conversations
    assert dict(map(tuple, f["volume"]["by_kind"])) == {"new": totals.tickets, "repeat": totals.repeat_reports,
                                                        "supplement": 0}
    assert f["handling"]["handoffs"] == totals.handoffs
    handled = dict(map(tuple, f["handling"]["by_handled_by"]))
    assert sum(handled.values()) == totals.conversations
    # One dispatch and one receipt per generated ticket; the last ones fall in early April.
    longer = db.call(compute, Period(date(2026, 3, 1), date(2026, 4, 10)), ZoneInfo("Asia/Shanghai"),
                     now=datetime(2026, 5, 1, tzinfo=UTC))["satisfaction"]["totals"]
    assert longer["dispatches"] == longer["receipts"] == totals.tickets
    assert (longer["warnings"], longer["violations"]) == (totals.warnings, totals.violations)
    assert totals.violations > 0 and longer["receipts_late"] == totals.violations  # the same deadline, two records
    assert f["handling"]["abandoned"] == totals.by_outcome["abandoned"]  # the generator's abandon is final
    # U3–U5: one survey per receipt, each ended; the second dispatches are no caller's report (T2).
    assert totals.surveys["due"] == totals.tickets and totals.surveys["second_dispatches"] > 0
    figures = {k: longer[f"surveys_{k}"] for k in ("due", "answered", "refused", "unreachable", "no_contact")}
    figures |= {k: longer[k] for k in ("second_dispatches", "attitude_rated", "attitude_satisfied",
                                       "quality_rated", "quality_satisfied")}
    assert figures == {k: totals.surveys[k] for k in figures}


def test_the_same_seed_writes_the_same_rows(tmp_path: object) -> None:
    from pathlib import Path

    sizes = []
    for name in ("a", "b"):
        db = Database(f"sqlite:///{Path(str(tmp_path)) / name}.db")
        db.upgrade()
        totals = generate(db, conversations=300, seed=3, start=datetime(2026, 3, 1, tzinfo=UTC), days=10,
                          lines_per_exchange=2)
        sizes.append((dict(totals.rows), dict(totals.by_outcome)))
        db.dispose()
    assert sizes[0] == sizes[1]

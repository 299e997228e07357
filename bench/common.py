"""What the benchmarks share: a stack of their own (free ports, a scratch store, the
end-to-end world), started as `make run` starts it."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bot.settings import REPO_ROOT, Settings
from tests.e2e.conftest import free_port

WORLD = REPO_ROOT / "tests" / "fixtures" / "worlds" / "e2e.yml"
RESULTS = REPO_ROOT / "bench" / "results"


def bench_settings(tmp: Path, **extra: Any) -> Settings:
    """Settings for a benchmark's stack; the bot process takes no calls (a benchmark
    that needs the phone channel hosts it itself)."""
    bot, rasa, actions, linetest = (free_port() for _ in range(4))
    return Settings(
        port=bot, rasa_port=rasa, rasa_url=f"http://127.0.0.1:{rasa}", action_port=actions,
        linetest_port=linetest, linetest_url=f"http://127.0.0.1:{linetest}",
        database_url=f"sqlite:///{tmp / 'hotline.db'}", tracker_db=tmp / "tracker.db",
        current_world_file=tmp / "world.yml", world_file=WORLD, log_level="WARNING", voice_enabled=False,
        **extra,
    )


@contextlib.contextmanager
def bench_stack(prefix: str, **extra: Any) -> Iterator[Settings]:
    """A stack of the benchmark's own (a scratch store, the end-to-end world), started
    and, at the end, stopped."""
    from bot.stack import running

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    settings = bench_settings(tmp, **extra)
    with running(settings, tmp / "logs", WORLD):
        yield settings


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (NaN for no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]

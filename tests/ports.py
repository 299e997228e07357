"""Port ranges for tests that pick a random block (media ports): with the suite split over
worker processes (pytest-xdist, ``make test``), each worker draws from its own share of
the range, so two tests running at once never pick the same block."""

from __future__ import annotations

import os
import random


def random_block(low: int, high: int, step: int) -> int:
    """A random multiple-of-``step`` offset in [low, high), within this worker's share."""
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0) % workers
    share = (high - low) // workers
    start = low + worker * share
    return random.randrange(start, start + share - step + 1, step)

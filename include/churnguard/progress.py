"""Progress for long work, as log lines that read well in a terminal and in Airflow task logs."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("churnguard.progress")


def progress(items: Iterable[T], total: int, label: str, every: float = 0.1) -> Iterator[T]:
    """Yield ``items``, logging ``label: k/total (p%), elapsed, eta`` about every ``every`` of the way."""
    start = time.monotonic()
    step = max(1, int(total * every))
    for k, item in enumerate(items, start=1):
        yield item
        if k % step == 0 or k == total:
            elapsed = time.monotonic() - start
            eta = elapsed / k * (total - k)
            log.info("%s: %d/%d (%d%%), %.1fs elapsed, eta %.1fs", label, k, total, 100 * k // total, elapsed, eta)

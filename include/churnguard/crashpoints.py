"""Named crash points around every write, for the crash-point test suite.

``crash_point("storage.replace.swapped")`` does nothing unless the environment variable
``CHURNGUARD_CRASH_AT`` names that point, in which case the process kills itself with SIGKILL right there,
as a power cut or an OOM kill would (no ``finally``, no ``atexit``). ``NAME:N`` kills at the N-th time the
point is reached in the process (default the first). Inert, and one dictionary look-up, otherwise.

Example::

    CHURNGUARD_CRASH_AT=promotion.champion_moved churnguard run-days --start 2026-10-03
"""

from __future__ import annotations

import os
import signal
import sys

ENV = "CHURNGUARD_CRASH_AT"
_hits: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL if ``CHURNGUARD_CRASH_AT`` names ``name`` (and its hit count)."""
    target = os.environ.get(ENV)
    if not target:
        return
    wanted, _, count = target.partition(":")
    if wanted != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == int(count or 1):
        sys.stderr.write(f"churnguard: crash point {name} reached: SIGKILL\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)

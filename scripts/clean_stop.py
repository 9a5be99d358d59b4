"""Clean stops (issue #31): a script stopped by SIGTERM (``timeout``, ``kill``) or SIGINT (Ctrl-C) ends the way its
normal exit or a failure does, and leaves none of the processes it started running.

    with clean_stop.on_signals():                          # around the main of every script that starts processes
        ...
    python scripts/clean_stop.py stop RUN [--below PID]    # bash scripts/stop.sh (make stop); demo.sh's trap

:func:`on_signals` turns the first SIGTERM or SIGINT into an exception raised in the main thread (``SystemExit(143)``,
``KeyboardInterrupt``), so every ``finally`` and context manager of the script runs its teardown (``stack.down``,
the services stopped, temporary homes removed). Meanwhile further signals are ignored: ``timeout`` signals the
script and then its whole process group, and the second signal must not cut the teardown short. Once the script
has ended by a signal or an error, whatever still runs below it is ended too.

Ending a process group (:func:`end`) ends every process below its members as well, whatever their group: each
service runs in a process group of its own (``airflow_stack._spawn``), and some of their descendants start groups of
their own (Airflow's task supervisor puts each task process in one, out of reach of a ``killpg`` of the scheduler's
group). Everything is sent SIGTERM at once, and SIGKILL once ``grace`` seconds have passed with a member still alive.
The caller's own process group is never signalled as a group (it holds the caller and the shell or test that
started it): its members below the caller are signalled one by one. Standard library only, Linux (``/proc``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

GRACE_S = 10.0
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def process_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, state letter) of every process, read from ``/proc``."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        state, ppid, pgid = stat[stat.rindex(")") + 2 :].split()[:3]  # the name in parentheses may hold anything
        table[int(entry.name)] = (int(ppid), int(pgid), state)
    return table


def below(table: dict[int, tuple[int, int, str]], roots: Iterable[int]) -> set[int]:
    """``roots`` (those alive) and every process below them in the process tree."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [pid for pid in roots if pid in table]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def end(groups: Iterable[int] = (), pids: Iterable[int] = (), under: int | None = None, grace: float = GRACE_S) -> None:
    """End the process groups ``groups``, the processes ``pids`` and every process below pid ``under`` (itself
    excluded), each with everything below it: SIGTERM to all at once, SIGKILL to what still lives after ``grace``
    seconds."""
    named, table, me = set(groups), process_table(), os.getpid()
    spared = {me, *_ancestors(table, me), *([under] if under else [])}  # the caller and whoever started it
    shared = {table[pid][1] for pid in spared if pid in table}  # their groups: signalled member by member
    roots = {pid for pid, (_, pgid, _) in table.items() if pgid in named} | set(pids)
    targets = below(table, roots | below(table, [under] if under else [])) - spared
    # a group is signalled whole when it was named or its leader is a target (a task process leading its own)
    whole = (named | {pid for pid in targets if table[pid][1] == pid}) - shared - {0, 1}
    singles = {pid for pid in targets if table[pid][1] not in whole}

    def alive() -> bool:  # a group counts while it has a member that is no zombie
        return any(
            state != "Z" and (pgid in whole or pid in singles)
            for pid, (_, pgid, state) in process_table().items()
            if pid not in spared
        )

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for group in whole:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, sig)
        for pid in singles:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not alive():
            return


def _ancestors(table: dict[int, tuple[int, int, str]], pid: int) -> set[int]:
    found = set()
    while pid in table and table[pid][0] not in found and table[pid][0] > 0:
        pid = table[pid][0]
        found.add(pid)
    return found


def stop_services(run: Path, under: int | None = None, grace: float = GRACE_S) -> list[str]:
    """End every service with a PID file in ``run`` (the group it leads and every process below it) and every
    process below pid ``under``, and remove the PID files; returns a ``stopped NAME (PID)`` line for each service."""
    started = {}
    for pid_file in sorted(run.glob("*.pid")):
        with contextlib.suppress(OSError, ValueError):
            started[pid_file.stem] = int(pid_file.read_text())
        pid_file.unlink(missing_ok=True)
    # each leads its process group, named by its pid (or, started without a group of its own, is ended alone);
    # all at once: a stack of many services stops in one grace period
    end(started.values(), started.values(), under, grace)
    return [f"stopped {name} ({pid})" for name, pid in started.items()]


@contextlib.contextmanager
def on_signals(grace: float = GRACE_S) -> Iterator[None]:
    """Run the body so that SIGTERM and SIGINT end it as an error would: raised in the main thread, its teardown
    runs; afterwards (and after any error) every process still below this one is ended."""
    seen: set[int] = set()  # the process groups below this process when a signal came
    signalled: list[int] = []

    def stop(signum: int, frame) -> None:
        ignore()  # the teardown runs once, uninterrupted
        seen.update(_signal_helpers(signal.SIGTERM))  # so that a teardown waiting for them (a pool's shutdown) returns
        signalled.append(signum)
        raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(128 + signum)

    def ignore() -> None:  # a Python handler, not SIG_IGN: commands the teardown runs must not inherit it
        for sig in SIGNALS:
            signal.signal(sig, lambda *_: None)

    previous = {sig: signal.signal(sig, stop) for sig in SIGNALS}
    try:
        yield
    except BaseException as exc:
        if signalled or not (isinstance(exc, SystemExit) and exc.code in (0, None)):
            ignore()
            # helpers had their SIGTERM with the signal, or outlive a failed step: no grace for them (and the
            # resource tracker of a multiprocessing pool ignores SIGTERM)
            seen.update(_signal_helpers(signal.SIGKILL))
            end(seen, under=os.getpid(), grace=grace)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _signal_helpers(sig: int) -> set[int]:
    """Send ``sig`` to the processes below this one in its own process group (pool workers, a command run by
    ``subprocess.run``: what Ctrl-C in a terminal reaches too); returns the groups of every process below."""
    table, me = process_table(), os.getpid()
    descendants = below(table, [me]) - {me}
    for pid in descendants:
        if table[pid][1] == table[me][1]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
    return {table[pid][1] for pid in descendants}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="End every service with a PID file in RUN, and what runs below.")
    parser.add_argument("command", choices=["stop"])
    parser.add_argument("run", type=Path, help="the folder of PID files ($CHURNGUARD_HOME/run)")
    parser.add_argument("--below", type=int, metavar="PID", help="also every process below PID (a script's trap)")
    args = parser.parse_args(argv)
    for line in stop_services(args.run, args.below):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

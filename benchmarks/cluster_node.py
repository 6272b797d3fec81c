"""One node of the cluster benchmark (`python -m benchmarks.cluster`): an `AsyncIOScheduler` in
a process of its own, on the store the driver names, running until the driver stops it.

The driver passes the store's configuration as JSON. The node starts its scheduler (on the
scheduler's own loop thread), writes a progress file a few times a second (how many runs it
executed and when the last one ended) and, on SIGTERM or SIGINT, shuts the scheduler down
(which writes the outcomes of its runs) and writes its result: the id and scheduled time of
every run it executed, the first and last execution times, errors and missed runs, and where
`asyncz` was imported from. Files are replaced atomically, so the driver never reads half a
file.

Standard library and asyncz only; the tasks the driver adds reference `noop` below.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROGRESS_EVERY = 0.1  # seconds between progress files


async def noop() -> None:
    """The benchmark's task: does nothing, on the scheduler's loop. Referenced by the tasks
    as `benchmarks.cluster_node:noop`."""


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` with `data` in one rename: a reader sees the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


class Tally:
    """What this node executed, from the scheduler's events (any thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: list[tuple[str, float]] = []  # (task id, scheduled time as epoch seconds)
        self.first: float | None = None
        self.last: float | None = None
        self.errors = 0
        self.missed = 0
        self.first_error = ""

    def executed(self, event: Any) -> None:
        now = time.time()
        with self.lock:
            self.runs.append((event.task_id, event.scheduled_run_time.timestamp()))
            if self.first is None:
                self.first = now
            self.last = now

    def failed(self, event: Any) -> None:
        with self.lock:
            self.errors += 1
            if not self.first_error:
                self.first_error = f"{event.task_id}: {event.exception!r}"

    def missing(self, event: Any) -> None:
        with self.lock:
            self.missed += 1

    def progress(self) -> dict[str, Any]:
        with self.lock:
            return {
                "executed": len(self.runs),
                "errors": self.errors,
                "missed": self.missed,
                "first": self.first,
                "last": self.last,
            }


def _idle(frame: Any) -> bool:
    """A thread with nothing to do: an event loop waiting in its selector, or a thread
    waiting on a condition or event, or a store's listener waiting for notifications (any
    other database wait is counted as busy: it is on the path of a fire)."""
    code = frame.f_code
    name = os.path.basename(code.co_filename)
    if name == "threading.py" and code.co_name == "wait":
        return True
    if name == "thread.py" and code.co_name == "_worker":
        return True  # a pool thread waiting for work (its queue is C code)
    caller = frame.f_back
    # A store's notification listener waiting for a NOTIFY or a pub/sub message.
    f = frame
    while f is not None:
        if f.f_code.co_name in ("notifies", "get_message", "_listen", "_listener"):
            return True
        f = f.f_back
    return (
        name == "selectors.py"
        and caller is not None
        and caller.f_code.co_name == "_run_once"
        and os.path.basename(caller.f_code.co_filename) == "base_events.py"
    )


class Sampler(threading.Thread):
    """A small sampling profiler: every `interval` seconds, the stack of every other thread.

    Counts, per thread name, how many samples each function was on the stack (inclusive: time
    spent in it and in what it called, waiting on a socket included) and at the top (self).
    Wall-clock attribution, which is what "where does the time of a fire go" needs; cProfile
    would see only the thread that enabled it, not the scheduler's loop thread.
    """

    def __init__(self, start_at: float, interval: float = 0.002) -> None:
        super().__init__(name="bench-sampler", daemon=True)
        self.start_at = start_at
        self.interval = interval
        self.idle: dict[str, int] = {}
        self.halt = threading.Event()
        self.samples: dict[str, int] = {}
        self.inclusive: dict[str, dict[str, int]] = {}
        self.own: dict[str, dict[str, int]] = {}

    def run(self) -> None:
        me = threading.get_ident()
        # From the due moment until the driver stops the node: the measured window.
        if self.halt.wait(max(0.0, self.start_at - time.time())):
            return
        while not self.halt.wait(self.interval):
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                # One name per role: drop the scheduler identity some thread names end with.
                thread = re.sub(r"-[0-9a-f]{8,}$", "", names.get(ident, str(ident)))
                if thread == "MainThread":
                    continue  # only waits for the stop signal
                self.samples[thread] = self.samples.get(thread, 0) + 1
                if _idle(frame):
                    self.idle[thread] = self.idle.get(thread, 0) + 1
                    continue
                inclusive = self.inclusive.setdefault(thread, {})
                own = self.own.setdefault(thread, {})
                seen: set[str] = set()
                top = True
                f: Any = frame
                while f is not None:
                    code = f.f_code
                    where = f"{code.co_filename}:{code.co_firstlineno}({code.co_name})"
                    if top:
                        own[where] = own.get(where, 0) + 1
                        top = False
                    if where not in seen:
                        seen.add(where)
                        inclusive[where] = inclusive.get(where, 0) + 1
                    f = f.f_back

    def stop(self, top: int = 60) -> dict[str, Any]:
        self.halt.set()
        self.join()

        def best(counts: dict[str, int]) -> list[tuple[str, int]]:
            return sorted(counts.items(), key=lambda kv: -kv[1])[:top]

        return {
            "interval": self.interval,
            "threads": {
                thread: {
                    "samples": n,
                    "idle": self.idle.get(thread, 0),
                    "inclusive": best(self.inclusive.get(thread, {})),
                    "own": best(self.own.get(thread, {})),
                }
                for thread, n in sorted(self.samples.items(), key=lambda kv: -kv[1])
            },
        }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cluster_node", description=__doc__)
    p.add_argument("--store", required=True, help="the store's configuration, as JSON")
    p.add_argument("--progress", type=Path, required=True, help="progress file (JSON)")
    p.add_argument("--result", type=Path, required=True, help="result file, written at exit")
    p.add_argument(
        "--no-run-records",
        action="store_true",
        help="set `store.fire_tasks = None` before start: the engine releases tasks with "
        "`release_tasks` and writes no run records",
    )
    p.add_argument("--due", type=float, default=0.0, help="the tasks' due time (epoch s)")
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample every thread's stack while running and add the busiest functions to the "
        "result",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    import asyncz
    from asyncz.events import TASK_ERROR, TASK_EXECUTED, TASK_MISSED
    from asyncz.schedulers import AsyncIOScheduler

    tally = Tally()
    scheduler = AsyncIOScheduler(
        stores={"default": json.loads(args.store)},
        executors={"default": {"type": "asyncio"}},
        timezone="UTC",
    )
    scheduler.add_listener(tally.executed, TASK_EXECUTED)
    scheduler.add_listener(tally.failed, TASK_ERROR)
    scheduler.add_listener(tally.missing, TASK_MISSED)
    store = scheduler.lookup_store("default")
    if args.no_run_records:
        store.fire_tasks = None  # type: ignore[attr-defined]

    sampler = Sampler(args.due) if args.profile else None
    if sampler is not None:
        sampler.start()
    started = time.time()
    scheduler.start()
    ready = {"started": started, "ready": time.time()}
    write_json(args.progress, {**tally.progress(), **ready})
    while not stop.wait(PROGRESS_EVERY):
        write_json(args.progress, {**tally.progress(), **ready})
    t0 = time.time()
    scheduler.shutdown(wait=True)
    shutdown_s = time.time() - t0
    profile = sampler.stop() if sampler is not None else None
    with tally.lock:
        runs = list(tally.runs)
    write_json(
        args.result,
        {
            **tally.progress(),
            "runs": runs,
            "first_error": tally.first_error,
            "shutdown_s": shutdown_s,
            "identity": getattr(scheduler, "identity", ""),
            "asyncz": os.path.dirname(asyncz.__file__),
            "run_records": not args.no_run_records,
            "profile": profile,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

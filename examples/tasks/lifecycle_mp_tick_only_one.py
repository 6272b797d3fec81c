"""Several worker processes (say, ``uvicorn --workers 4``) run this module. Each sets up its own
lifecycle generator, but the periodic tick lives in a file store the workers share, and each
tick runs in exactly one of them.

The tick is a module-level function so that the file store can keep a reference to it; the
shutdown task drives this process's generator, which no other process can reach, so it goes
to a memory store. ``lock_path`` makes the workers of one process group take turns on the
shared store; the store's leases already guarantee that one due tick goes to one worker.

    ASYNCZ_EXAMPLE_STORE=/tmp/shared python lifecycle_mp_tick_only_one.py [tick] [run_for]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Generator

from asyncz.events import TASK_EXECUTED, TaskExecutionEvent
from asyncz.schedulers import AsyncIOScheduler
from asyncz.utils import make_function

# Workers share the store through this directory; alone, the example makes its own.
SHARED_DIRECTORY = os.environ.get("ASYNCZ_EXAMPLE_STORE")
LOCK_DIRECTORY = os.environ.get("ASYNCZ_EXAMPLE_LOCKS", tempfile.gettempdir())


def lifecycle_task() -> Generator[None, bool, None]:
    print(f"[{os.getpid()}] setup", flush=True)
    running = yield
    while running:
        print(f"[{os.getpid()}] tick {time.time():.3f}", flush=True)
        running = yield
    print(f"[{os.getpid()}] cleanup", flush=True)


generator = lifecycle_task()


def lifecycle_tick() -> None:
    generator.send(True)


def report(event: TaskExecutionEvent) -> None:
    # Which worker ran which tick: each scheduled time shows up in one worker only.
    if event.task_id == "lifecycle-tick":
        due = event.scheduled_run_time.timestamp()
        print(f"[{os.getpid()}] ran {event.task_id} due {due:.3f}", flush=True)


def main(tick_seconds: float = 1.0, run_for: float = 3.5) -> None:
    directory = SHARED_DIRECTORY or tempfile.mkdtemp()
    scheduler = AsyncIOScheduler(
        lock_path=os.path.join(LOCK_DIRECTORY, "asyncz_{pgrp}_{store}.lock"),
        stores={
            # A private directory can go with this process; a shared one must outlive it.
            "default": {
                "type": "file",
                "directory": directory,
                "cleanup_directory": SHARED_DIRECTORY is None,
            },
            "memory": {"type": "memory"},
        },
        startup_delay=0,
    )
    generator.send(None)  # setup, in every worker
    scheduler.add_task(
        make_function(generator.send), args=[False], trigger="shutdown", store="memory"
    )
    # The same id in every worker: the first one stores it, the others find it there.
    scheduler.add_task(
        lifecycle_tick, trigger="interval", seconds=tick_seconds, id="lifecycle-tick"
    )
    scheduler.add_listener(report, TASK_EXECUTED)
    scheduler.start()
    time.sleep(run_for)
    scheduler.stop()


if __name__ == "__main__":
    main(*(float(arg) for arg in sys.argv[1:3]))

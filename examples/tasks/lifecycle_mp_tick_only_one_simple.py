"""As ``lifecycle_mp_tick_only_one.py``, without a shutdown task: the generator needs no
cleanup, so a file store is all it takes.

    ASYNCZ_EXAMPLE_STORE=/tmp/shared python lifecycle_mp_tick_only_one_simple.py [tick] [run_for]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Generator

from asyncz.events import TASK_EXECUTED, TaskExecutionEvent
from asyncz.schedulers import AsyncIOScheduler

SHARED_DIRECTORY = os.environ.get("ASYNCZ_EXAMPLE_STORE")
LOCK_DIRECTORY = os.environ.get("ASYNCZ_EXAMPLE_LOCKS", tempfile.gettempdir())


def lifecycle_task() -> Generator[None, bool, None]:
    print(f"[{os.getpid()}] setup", flush=True)
    while (yield):
        print(f"[{os.getpid()}] tick {time.time():.3f}", flush=True)


generator = lifecycle_task()


def lifecycle_tick() -> None:
    generator.send(True)


def report(event: TaskExecutionEvent) -> None:
    # Which worker ran which tick: each scheduled time shows up in one worker only.
    due = event.scheduled_run_time.timestamp()
    print(f"[{os.getpid()}] ran {event.task_id} due {due:.3f}", flush=True)


def main(tick_seconds: float = 1.0, run_for: float = 3.5) -> None:
    directory = SHARED_DIRECTORY or tempfile.mkdtemp()
    scheduler = AsyncIOScheduler(
        lock_path=os.path.join(LOCK_DIRECTORY, "asyncz_{pgrp}_{store}.lock"),
        stores={
            "default": {
                "type": "file",
                "directory": directory,
                "cleanup_directory": SHARED_DIRECTORY is None,
            }
        },
        startup_delay=0,
    )
    generator.send(None)
    scheduler.add_task(
        lifecycle_tick, trigger="interval", seconds=tick_seconds, id="lifecycle-tick"
    )
    scheduler.add_listener(report, TASK_EXECUTED)
    scheduler.start()
    time.sleep(run_for)
    scheduler.stop()


if __name__ == "__main__":
    main(*(float(arg) for arg in sys.argv[1:3]))

"""Exactly one worker process runs the background job at a time; when it stops, another one
takes over at its next tick.

Every worker ticks its own generator from a memory store. The generator only does real work
(and its setup, such as connecting database clients) while it holds a file lock shared by the
workers of the process group; the others just yield and try again at the next tick. The
scheduler is used as a context manager.

    python lifecycle_mp_only_one_instance.py [name] [tick] [run_for]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Generator

from asyncz.locks import FileLockProtected
from asyncz.schedulers import AsyncIOScheduler
from asyncz.utils import make_function

LOCK_DIRECTORY = os.environ.get("ASYNCZ_EXAMPLE_LOCKS", tempfile.gettempdir())


def lifecycle_task(name: str, scheduler: AsyncIOScheduler) -> Generator[None, bool, None]:
    file_lock = FileLockProtected(os.path.join(LOCK_DIRECTORY, f"asyncz_bg_{name}_{{pgrp}}.lock"))
    running = yield
    while running:
        with file_lock.protected(False) as got_the_lock:
            if not got_the_lock:
                running = yield  # another worker has the job; ask again at the next tick
                continue
            # The delayed setup, only in the worker that runs the job.
            print(f"[{os.getpid()}] {name}: got the lock, connecting clients", flush=True)
            scheduler.add_task(
                make_function(generator.send), args=[False], trigger="shutdown", store="memory"
            )
            while running:
                print(f"[{os.getpid()}] {name}: tick {time.time():.3f}", flush=True)
                running = yield
            print(f"[{os.getpid()}] {name}: disconnecting clients, releasing the lock", flush=True)
    print(f"[{os.getpid()}] {name}: done", flush=True)


generator: Generator[None, bool, None]


def main(name: str = "job", tick_seconds: float = 1.0, run_for: float = 3.5) -> None:
    global generator
    scheduler = AsyncIOScheduler(stores={"memory": {"type": "memory"}})
    generator = lifecycle_task(name, scheduler)
    generator.send(None)
    scheduler.add_task(
        make_function(generator.send),
        args=[True],
        trigger="interval",
        seconds=tick_seconds,
        store="memory",
    )
    with scheduler:
        time.sleep(run_for)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "job", *(float(arg) for arg in args[1:3]))

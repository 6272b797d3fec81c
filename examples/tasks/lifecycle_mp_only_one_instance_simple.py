"""As ``lifecycle_mp_only_one_instance.py`` with a default scheduler: no shutdown task, so the
lock is released only when the process ends, and a tick may be skipped at the hand-over.

    python lifecycle_mp_only_one_instance_simple.py [name] [tick] [run_for]
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


def lifecycle_task(name: str) -> Generator[None, bool, None]:
    file_lock = FileLockProtected(os.path.join(LOCK_DIRECTORY, f"asyncz_bg_{name}_{{pgrp}}.lock"))
    while (yield):
        with file_lock.protected(False) as got_the_lock:
            if not got_the_lock:
                continue
            print(f"[{os.getpid()}] {name}: got the lock", flush=True)
            while (yield):
                print(f"[{os.getpid()}] {name}: tick {time.time():.3f}", flush=True)


def main(name: str = "job", tick_seconds: float = 1.0, run_for: float = 3.5) -> None:
    generator = lifecycle_task(name)
    generator.send(None)
    scheduler = AsyncIOScheduler()
    scheduler.add_task(
        make_function(generator.send), args=[True], trigger="interval", seconds=tick_seconds
    )
    with scheduler:
        time.sleep(run_for)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "job", *(float(arg) for arg in args[1:3]))

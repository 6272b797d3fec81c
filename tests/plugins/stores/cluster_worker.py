"""One scheduler node for the cluster tests, run as ``python -m tests.plugins.stores.cluster_worker
STORE_JSON OPTIONS_JSON WORKDIR``.

It logs its warnings and errors to ``WORKDIR/node-<pid>.log``, and each executed fire time as
``<task id> <fire time µs> <pid>`` to ``WORKDIR/fires.log`` (one ``O_APPEND`` write per line, so
lines from several processes stay whole); it prints ``started`` once its scheduler runs, and
stops when ``WORKDIR/stop`` appears.

With ``ASYNCZ_TEST_HANG_AFTER_ACQUIRE=1`` its store blocks forever right after it first
acquires due tasks (the failure point of a node that holds leases and then gets killed), after
creating ``WORKDIR/hung``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from asyncz.core import events
from asyncz.core.records import to_timestamp_us
from asyncz.schedulers import AsyncIOScheduler


def log_fire(path: str, event: Any) -> None:
    line = f"{event.task_id} {to_timestamp_us(event.scheduled_run_time)} {os.getpid()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def hang_after_acquire(store: Any, workdir: Path) -> None:
    real = store.acquire_due_tasks

    def acquire(*args: Any, **kwargs: Any) -> Any:
        acquired = real(*args, **kwargs)
        if acquired:
            (workdir / "hung").write_text(",".join(t.id for t in acquired))
            threading.Event().wait()  # never returns: the pass holds its leases
        return acquired

    store.acquire_due_tasks = acquire


async def main() -> None:
    store, options, workdir = json.loads(sys.argv[1]), json.loads(sys.argv[2]), Path(sys.argv[3])
    logging.basicConfig(
        filename=str(workdir / f"node-{os.getpid()}.log"),
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    scheduler = AsyncIOScheduler(stores={"default": store}, **options)
    fires = str(workdir / "fires.log")
    scheduler.add_listener(lambda event: log_fire(fires, event), events.TASK_EXECUTED)
    scheduler.start()
    if os.environ.get("ASYNCZ_TEST_HANG_AFTER_ACQUIRE") == "1":
        hang_after_acquire(scheduler.lookup_store("default"), workdir)
    print("started", flush=True)
    stop = workdir / "stop"
    while not stop.exists():
        await asyncio.sleep(0.05)
    scheduler.shutdown(wait=False)


if __name__ == "__main__":
    asyncio.run(main())

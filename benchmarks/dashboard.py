"""`python -m benchmarks.dashboard`: how long the dashboard's pages take on the server side.

Issue 15 asks for a page of 1,000 tasks in under 200 ms on the server side. A scheduler with
1,000 interval tasks (on the memory store, and on a SQLite store, whose run records the pages
read too) and a run history of 2,000 runs serves each page below straight through ASGI (no
sockets, no browser): the time is from the request to the last byte of the response, the
scheduler's own reads and the template rendering included. Each page is asked `--repeats` times
after one warm-up; the median and the slowest are reported, with the 200 ms goal beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from asyncz.contrib.dashboard import AsynczAdmin
from asyncz.contrib.dashboard.history import MemoryRunHistoryStorage
from asyncz.core.events import (
    TASK_EXECUTED,
    TASK_SUBMITTED,
    TaskExecutionEvent,
    TaskSubmissionEvent,
)
from asyncz.schedulers.asyncio import AsyncIOScheduler

GOAL_MS = 200.0
PAGES = (
    "/",
    "/tasks/",
    "/tasks/?per_page=200",
    "/tasks/?per_page=1000",
    "/tasks/partials/table?per_page=200&q=task",
    "/tasks/task-0500",
    "/timeline/",
    "/history/",
    "/runtime/",
)


def noop() -> None:
    return None


async def _call(app: Any, path: str) -> tuple[int, int]:
    raw, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": raw,
        "raw_path": raw.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
    }
    status = 0
    size = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, size
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            size += len(message.get("body", b""))

    await app(scope, receive, send)
    return status, size


def _fill_history(scheduler: Any, history: MemoryRunHistoryStorage, runs: int) -> None:
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    for i in range(runs):
        task_id = f"task-{i % 1000:04d}"
        at = start + timedelta(seconds=i)
        history.record_submission(
            TaskSubmissionEvent(
                code=TASK_SUBMITTED, task_id=task_id, store="default", scheduled_run_times=[at]
            ),
            scheduler=scheduler,
        )
        history.record_execution(
            TaskExecutionEvent(
                code=TASK_EXECUTED,
                task_id=task_id,
                store="default",
                scheduled_run_time=at,
                run_id=f"run-{i:06d}",
                started_at=at,
                duration=0.002,
            ),
            scheduler=scheduler,
        )


async def measure(store: str, tasks: int, runs: int, repeats: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as folder:
        stores: dict[str, Any] = {"default": {"type": "memory"}}
        if store == "sqlite":
            url = f"sqlite:///{Path(folder) / 'bench.db'}"
            stores = {"default": {"type": "sqlalchemy", "url": url}}
        scheduler = AsyncIOScheduler(stores=stores)
        scheduler.start(paused=True)  # nothing fires while the pages are measured
        try:
            for i in range(tasks):
                scheduler.add_task(
                    noop, "interval", seconds=60 + i, id=f"task-{i:04d}", name=f"task {i}"
                )
            history = MemoryRunHistoryStorage(maxlen=runs)
            _fill_history(scheduler, history, runs)
            app = AsynczAdmin(scheduler=scheduler, run_history_storage=history).get_asgi_app()
            rows = []
            for path in PAGES:
                status, size = await _call(app, path)  # warm-up (templates compile)
                if status != 200:
                    raise RuntimeError(f"{path} answered {status}")
                times = []
                for _ in range(repeats):
                    began = time.perf_counter()
                    await _call(app, path)
                    times.append((time.perf_counter() - began) * 1000)
                rows.append(
                    {
                        "store": store,
                        "page": path,
                        "median_ms": statistics.median(times),
                        "max_ms": max(times),
                        "kib": size / 1024,
                    }
                )
            return rows
        finally:
            scheduler.shutdown(wait=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--stores", default="memory,sqlite")
    options = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for store in options.stores.split(","):
        rows.extend(asyncio.run(measure(store, options.tasks, options.runs, options.repeats)))
    print(
        f"Dashboard pages, {options.tasks} tasks, {options.runs} runs in the history, "
        f"{options.repeats} requests each (server side, through ASGI); goal {GOAL_MS:.0f} ms\n"
    )
    print("| store | page | median ms | slowest ms | size KiB | within goal |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for row in rows:
        ok = "yes" if row["max_ms"] < GOAL_MS else "NO"
        print(
            f"| {row['store']} | `{row['page']}` | {row['median_ms']:.1f} | "
            f"{row['max_ms']:.1f} | {row['kib']:.0f} | {ok} |"
        )


if __name__ == "__main__":
    main()

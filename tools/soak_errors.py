"""Soak: a task that raises every 10 ms, for a long time; does resident memory grow?

    python tools/soak_errors.py --minutes 10 --executor asyncio

Each failing run holds a 64 KiB local, so a leak of failed runs' frames (the Asyncz/APScheduler
traceback leak) would show as roughly 6 MiB of growth per second. A listener keeps the last 100
TASK_ERROR events, as a monitoring hook would, so events must not pin frames either.

Resident memory (Linux ``/proc/self/statm``) is sampled every ``--every`` seconds. After a
warm-up minute, the report compares the first and last minute of samples and fits a slope; the
result is printed as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import logging
import os
import resource
import sys
import threading
import time
from typing import Any

from asyncz.events import TASK_ERROR, TASK_EXECUTED, TASK_MISSED
from asyncz.schedulers import AsyncIOScheduler

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def failing_task() -> None:
    payload = bytearray(64 * 1024)  # kept alive only by this frame
    payload[0] = 1
    raise ValueError(f"failure #{len(payload)}")


async def failing_coroutine() -> None:
    payload = bytearray(64 * 1024)
    payload[0] = 1
    raise ValueError(f"failure #{len(payload)}")


def slope_per_minute(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS over time, in bytes per minute."""
    n = len(samples)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in samples) / n
    mean_r = sum(r for _, r in samples) / n
    num = sum((t - mean_t) * (r - mean_r) for t, r in samples)
    den = sum((t - mean_t) ** 2 for t, _ in samples)
    return 60.0 * num / den if den else 0.0


async def soak(minutes: float, executor: str, coroutine: bool, every: float) -> dict[str, Any]:
    counts: collections.Counter[int] = collections.Counter()
    kept: collections.deque[Any] = collections.deque(maxlen=100)
    lock = threading.Lock()

    def listener(event: Any) -> None:
        with lock:
            counts[event.code] += 1
        if event.code == TASK_ERROR:
            kept.append(event)

    scheduler = AsyncIOScheduler(timezone="UTC", executors={"default": {"type": executor}})
    scheduler.add_listener(listener, TASK_ERROR | TASK_EXECUTED | TASK_MISSED)
    fn = failing_coroutine if coroutine else failing_task
    scheduler.add_task(fn, "interval", seconds=0.01, id="fails", max_instances=10)
    samples: list[tuple[float, int]] = []
    begin = time.monotonic()
    scheduler.start()
    try:
        while time.monotonic() - begin < minutes * 60:
            await asyncio.sleep(every)
            gc.collect()
            elapsed = time.monotonic() - begin
            samples.append((elapsed, rss_bytes()))
            print(
                f"{elapsed:7.1f}s rss={samples[-1][1] / 2**20:7.2f} MiB "
                f"errors={counts[TASK_ERROR]}",
                flush=True,
            )
    finally:
        scheduler.shutdown()
    warm = [s for s in samples if s[0] >= 60] or samples
    first = [r for t, r in warm if t < warm[0][0] + 60]
    last = [r for t, r in warm if t >= warm[-1][0] - 60]
    seconds = samples[-1][0] if samples else 0.0
    return {
        "executor": executor,
        "callable": "coroutine" if coroutine else "function",
        "minutes": round(seconds / 60, 2),
        "errors": counts[TASK_ERROR],
        "errors_per_second": round(counts[TASK_ERROR] / seconds, 1) if seconds else 0,
        "executed": counts[TASK_EXECUTED],
        "missed": counts[TASK_MISSED],
        "rss_after_warmup_mib": round(warm[0][1] / 2**20, 2),
        "rss_first_minute_mean_mib": round(sum(first) / len(first) / 2**20, 2),
        "rss_last_minute_mean_mib": round(sum(last) / len(last) / 2**20, 2),
        "rss_min_mib": round(min(r for _, r in warm) / 2**20, 2),
        "rss_max_mib": round(max(r for _, r in warm) / 2**20, 2),
        "rss_slope_kib_per_minute": round(slope_per_minute(warm) / 1024, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--executor", default="asyncio", help="executor plugin alias")
    parser.add_argument("--coroutine", action="store_true", help="the task is async")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    options = parser.parse_args()
    # The errors are the point; keep their log records off the terminal (still created).
    quiet = logging.getLogger("asyncz")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    result = asyncio.run(soak(options.minutes, options.executor, options.coroutine, options.every))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

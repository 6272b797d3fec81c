"""A task with a lifecycle: a generator sets up, is ticked while the scheduler runs, and cleans
up when the scheduler stops.

``make_function`` wraps ``generator.send`` (which has no signature to inspect) in a plain
function. Generators live in this process only, so these tasks stay in the memory store.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Generator

from asyncz.schedulers import AsyncIOScheduler
from asyncz.utils import make_function


def lifecycle_task(scheduler: AsyncIOScheduler) -> Generator[None, bool, None]:
    # Setup: runs when the generator is primed.
    print("setup: connecting to the database")
    # The shutdown task sends False into the generator, which ends the loop below.
    scheduler.add_task(make_function(generator.send), args=[False], trigger="shutdown")
    running = yield
    while running:
        print("tick: doing the periodic work")
        running = yield
    # Cleanup: runs when the scheduler shuts down.
    print("cleanup: disconnecting from the database")


def main(tick_seconds: float = 1.0, run_for: float = 3.5) -> None:
    global generator
    scheduler = AsyncIOScheduler()
    generator = lifecycle_task(scheduler)
    generator.send(None)  # prime it: runs the setup, up to the first yield
    scheduler.add_task(
        make_function(generator.send), args=[True], trigger="interval", seconds=tick_seconds
    )
    scheduler.start()
    time.sleep(run_for)  # the scheduler runs in its own thread meanwhile
    scheduler.stop()  # runs the shutdown task: the generator cleans up


generator: Generator[None, bool, None]

if __name__ == "__main__":
    main(*(float(arg) for arg in sys.argv[1:3]))

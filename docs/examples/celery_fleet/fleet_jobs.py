"""The work: functions the Celery workers are allowed to run."""

import os
import time


def tick() -> float:
    """Append this run to the ledger (when one is configured) and return when it ran."""
    now = time.time()
    ledger = os.environ.get("FLEET_LEDGER")
    if ledger:
        with open(ledger, "a") as f:
            f.write(f"{os.getpid()} {now}\n")
    return now

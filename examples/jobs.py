"""The callables of ``examples/tasks.toml`` (``jobs:heartbeat``, ``jobs:report``).

``asyncz start --config examples/tasks.toml`` finds this module because a tasks file's own
directory is on the import path (``[asyncz] python_path``, default ``["."]``).
"""

from __future__ import annotations

import os
from datetime import datetime


def heartbeat(service: str) -> None:
    """Say the service is alive (flushed, so it shows at once even when piped)."""
    print(f"{datetime.now():%H:%M:%S} {service}: alive (pid {os.getpid()})", flush=True)


def report(kind: str, *, verbose: bool = False) -> None:
    """A stand-in for a periodic report."""
    detail = " with details" if verbose else ""
    print(f"{datetime.now():%H:%M:%S} {kind} report{detail}: all good", flush=True)

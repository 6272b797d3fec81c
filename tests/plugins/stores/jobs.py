"""Module-level callables for store tests: persistent stores keep them by reference, and
subprocesses import them from here."""

from __future__ import annotations

import os


def job(*args: object, **kwargs: object) -> None:
    return None


def movable() -> None:
    """Tests delete this attribute to play "the function was moved"."""


def record_run(path: str, label: str) -> None:
    """Append one line per run; O_APPEND keeps lines from several processes whole."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{label} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def fail() -> None:
    raise ValueError("boom")


def held_run(path: str, label: str, release: str) -> None:
    """Log the start, then run until the file ``release`` exists (at most 60 s)."""
    import time

    record_run(path, f"start-{label}")
    deadline = time.monotonic() + 60
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)
    record_run(path, f"end-{label}")

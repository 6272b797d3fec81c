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

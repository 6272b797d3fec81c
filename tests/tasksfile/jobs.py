"""Callables the tasks files of these tests name (``tests.tasksfile.jobs:...``)."""

from __future__ import annotations

from pathlib import Path


def note(path: str, text: str = "ran") -> None:
    with Path(path).open("a") as out:
        out.write(text + "\n")


def other(path: str, text: str = "other") -> None:
    note(path, text)


def two(a: int, b: int, *, scale: int = 1) -> int:
    return (a + b) * scale


NOT_CALLABLE = 42

"""Locks with Asyncz's ``protected()`` interface: null, thread, re-entrant thread and file locks.

``protected(blocking=False, timeout=None)`` is a context manager yielding whether the lock was
obtained; the lock is released when the block exits, by an exception too. The file lock
coordinates processes on one host (``flock``); it never deletes its lock file, because another
process may hold a lock on that very file and a new file would let two processes "hold" it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, runtime_checkable

__all__ = [
    "FileLockProtected",
    "FileProtectedLock",
    "LockProtected",
    "LockProtectedProtocol",
    "NullLockProtected",
    "RLockProtected",
]


@runtime_checkable
class LockProtectedProtocol(Protocol):
    """**Protocol**: a lock used as ``with lock.protected(blocking, timeout) as obtained:``."""

    def protected(
        self, blocking: bool = False, timeout: float | None = None
    ) -> AbstractContextManager[bool]: ...

    def shutdown(self) -> None: ...


class NullLockProtected:
    """A lock that is always obtained: for a store nobody else uses."""

    @contextmanager
    def protected(self, blocking: bool = False, timeout: float | None = None) -> Iterator[bool]:
        yield True

    def shutdown(self) -> None:
        """Nothing to release."""


class LockProtected:
    """A thread lock (not re-entrant)."""

    def __init__(self) -> None:
        self.lock = self._make_lock()

    def _make_lock(self) -> threading.Lock | threading.RLock:
        return threading.Lock()

    @contextmanager
    def protected(self, blocking: bool = False, timeout: float | None = None) -> Iterator[bool]:
        obtained = self.lock.acquire(blocking, -1 if timeout is None or not blocking else timeout)
        try:
            yield obtained
        finally:
            if obtained:
                self.lock.release()

    def shutdown(self) -> None:
        """Nothing to release: the lock goes with the object."""


class RLockProtected(LockProtected):
    """A re-entrant thread lock."""

    def _make_lock(self) -> threading.Lock | threading.RLock:
        return threading.RLock()


class FileLockProtected:
    """An exclusive lock on a file, shared by every process (and thread) on this host.

    ``path`` may contain ``{pgrp}`` (process group id) and ``{ppid}`` (parent process id), so
    that all workers of one server master share a lock: ``/tmp/asyncz_{pgrp}.lock``.
    """

    def __init__(self, path: str) -> None:
        if not isinstance(path, str) or not path:
            raise ValueError(f"FileLockProtected needs a file path, got {path!r}")
        self.path = format_lock_path(path)
        # flock is per open file: a thread lock keeps two threads of this process apart too.
        self._thread_lock = threading.Lock()

    @contextmanager
    def protected(self, blocking: bool = False, timeout: float | None = None) -> Iterator[bool]:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._thread_lock.acquire(
            blocking, -1 if timeout is None or not blocking else timeout
        ):
            yield False
            return
        fd = -1
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            obtained = _try_lock(fd)
            while not obtained and blocking:
                if deadline is not None and time.monotonic() >= deadline:
                    break
                time.sleep(0.01)  # flock has no timeout: poll for a bounded time
                obtained = _try_lock(fd)
            try:
                yield obtained
            finally:
                if obtained:
                    _unlock(fd)
        finally:
            if fd >= 0:
                os.close(fd)
            self._thread_lock.release()

    def shutdown(self) -> None:
        """Nothing to do: the lock file is deliberately left in place (see the module doc)."""


#: The name the Asyncz documentation's prose uses for the same class.
FileProtectedLock = FileLockProtected


def format_lock_path(path: str, **extra: str) -> str:
    """Fill in ``{pgrp}``, ``{ppid}`` and any ``extra`` placeholders of a lock path."""
    values = {"pgrp": str(_pgrp()), "ppid": str(os.getppid()), **extra}
    try:
        return path.format_map(_Keep(values))
    except (ValueError, IndexError) as exc:
        raise ValueError(f"lock path {path!r} is not a valid template: {exc}") from None


class _Keep(dict[str, str]):
    """Leaves unknown placeholders as they are, so ``{store}`` can be filled in later."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _pgrp() -> int:
    getpgrp = getattr(os, "getpgrp", None)
    return getpgrp() if getpgrp is not None else os.getpid()


try:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

except ImportError:  # Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]

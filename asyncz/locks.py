"""Public home of the locks (``from asyncz.locks import FileLockProtected``)."""

from asyncz.core.locks import (
    FileLockProtected,
    FileProtectedLock,
    LockProtected,
    LockProtectedProtocol,
    NullLockProtected,
    RLockProtected,
)

__all__ = [
    "FileLockProtected",
    "FileProtectedLock",
    "LockProtected",
    "LockProtectedProtocol",
    "NullLockProtected",
    "RLockProtected",
]

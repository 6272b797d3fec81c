from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from asyncz.locks import FileLockProtected, LockProtected, NullLockProtected, RLockProtected

HOLD = """
import sys, time
from asyncz.locks import FileLockProtected
lock = FileLockProtected(sys.argv[1])
with lock.protected(blocking=True, timeout=5) as got:
    print("held" if got else "not", flush=True)
    sys.stdin.readline()  # hold until the test says so
"""


def test_file_lock_excludes_another_process(tmp_path: Path) -> None:
    path = str(tmp_path / "a.lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        lock = FileLockProtected(path)
        with lock.protected() as got:
            assert got is False
        with lock.protected(blocking=True, timeout=0.1) as got:
            assert got is False
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(10)
    with FileLockProtected(path).protected(blocking=True, timeout=5) as got:
        assert got is True


def test_file_lock_is_released_on_exception_and_file_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "b.lock"
    lock = FileLockProtected(str(path))
    with pytest.raises(RuntimeError), lock.protected() as got:
        assert got
        raise RuntimeError("inside")
    with lock.protected() as got:
        assert got
    lock.shutdown()
    assert path.exists()  # deleting it would let a new process lock a different inode


def test_file_lock_excludes_threads_of_one_process(tmp_path: Path) -> None:
    lock = FileLockProtected(str(tmp_path / "c.lock"))
    inside = threading.Event()
    leave = threading.Event()

    def hold() -> None:
        with lock.protected(blocking=True) as got:
            assert got
            inside.set()
            leave.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    assert inside.wait(5)
    with lock.protected() as got:
        assert got is False
    leave.set()
    thread.join()


def test_lock_path_placeholders(tmp_path: Path) -> None:
    lock = FileLockProtected(str(tmp_path / "x_{pgrp}_{ppid}_{store}.lock"))
    assert lock.path.endswith(f"x_{os.getpgrp()}_{os.getppid()}_{{store}}.lock")
    with pytest.raises(ValueError, match="file path"):
        FileLockProtected("")


@pytest.mark.parametrize("cls", [LockProtected, RLockProtected])
def test_thread_locks_release_on_exception(cls: type[LockProtected]) -> None:
    lock = cls()
    with pytest.raises(KeyError), lock.protected() as got:
        assert got
        raise KeyError("x")
    with lock.protected() as got:
        assert got


def test_rlock_is_reentrant_and_lock_is_not() -> None:
    rlock = RLockProtected()
    with rlock.protected() as outer, rlock.protected() as inner:
        assert outer and inner
    lock = LockProtected()
    with lock.protected() as outer, lock.protected() as inner:
        assert outer and not inner
    with NullLockProtected().protected() as got:
        assert got

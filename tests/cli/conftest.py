"""Helpers for driving the real ``asyncz`` console script in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "asyncz"
#: the console script when installed next to this Python, else the module
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "asyncz.cli"]

JOBS = textwrap.dedent(
    """
    import time
    from pathlib import Path

    def noop():
        return None

    def echo(*args, **kwargs):
        return {"args": args, "kwargs": kwargs}

    def touch(path):
        Path(path).write_text("ran")

    def fail():
        raise RuntimeError("boom")

    def slow(path, seconds=1.0):
        Path(path).write_text("started")
        time.sleep(seconds)
        Path(path).write_text("finished")
    """
)


class Cli:
    """Runs ``asyncz ARGS`` in ``cwd`` with the test's jobs module importable."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        (cwd / "cli_jobs.py").write_text(JOBS)
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(cwd), str(ROOT)]),
            "COLUMNS": "200",
        }
        self.env.pop("ASYNCZ_DEBUG", None)

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*COMMAND, *args],
            capture_output=True,
            text=True,
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            timeout=timeout,
            check=False,
        )

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def python(self, code: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``python -c code`` with the same environment (e.g. to hide a driver first)."""
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            capture_output=True,
            text=True,
            cwd=self.cwd,
            env=self.env,
            timeout=60,
            check=False,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*COMMAND, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.cwd,
            env=self.env,
        )


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def sqlite(tmp_path: Path) -> str:
    return f"durable=sqlite:///{tmp_path / 'tasks.db'}"


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, step: float = 0.05) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds (a bound, not a
    measurement)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(step)


def missing(modules: Sequence[str]) -> str:
    """Python code hiding ``modules`` (as if not installed), then running the command with
    ``sys.argv[1:]``."""
    hide = "; ".join(f"sys.modules[{m!r}] = None" for m in modules)
    return f"import sys; {hide}; from asyncz.cli import main; raise SystemExit(main(sys.argv[1:]))"

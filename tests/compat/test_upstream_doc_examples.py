"""Every script of Asyncz's documentation (``docs_src/``) runs against asyncz without an error.

The scripts run where they lie, each in its own process and scratch folder. One that would run
forever (a scheduler serving until stopped) passes when it has printed no traceback after a few
seconds. Scripts for a MongoDB store are left out (no MongoDB server can be had here; asyncz has
no MongoDB store), as are scripts whose third-party imports (Ravyn) are not installed.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.compat.upstream import ROOT, upstream_folder

#: Seconds a script may run; one still running then is stopped and judged by its output.
RUN_SECONDS = 4.0

#: Scripts that fail on purpose, with the error they must end in (Asyncz 0.17.1 fails on each
#: too, most with another error). Listed in docs/differences.md.
EXPECTED_ERRORS = {
    "contrib/ravyn/decorator.py": (
        "TypeError",
        "Ravyn(scheduler_tasks=...) is not in the Ravyn the suite pins (0.4.1); the asyncz "
        "decorator part of the script runs",
    ),
    "schedulers/add_task.py": (
        "ValueError",
        "passes args=[None] to a function that takes no arguments: refused at add_task",
    ),
    "schedulers/pausing_all_tasks.py": (
        "SchedulerNotRunningError",
        "pauses a scheduler that was never started",
    ),
    "schedulers/resuming_all_tasks.py": (
        "SchedulerNotRunningError",
        "resumes a scheduler that was never started",
    ),
    "schedulers/shutdown.py": (
        "SchedulerNotRunningError",
        "shuts down a scheduler that was never started",
    ),
    "triggers/custom.py": (
        "TypeError",
        "CustomTrigger(...) passes Ellipsis as a positional argument the trigger has no use for",
    ),
    "triggers/cron/example3.py": (
        "TypeError",
        "CronTrigger(hours=1): 'hours' is not a cron field (Asyncz would fire every second)",
    ),
    "triggers/cron/example4.py": (
        "TypeError",
        "CronTrigger(hours=1): 'hours' is not a cron field (Asyncz would fire every second)",
    ),
}

_FOLDER = upstream_folder()
_SCRIPTS = sorted((_FOLDER / "docs_src").rglob("*.py")) if _FOLDER else []


def _skip_reason(script: Path) -> str | None:
    text = script.read_text()
    if "mongo" in text.lower():
        return "uses a MongoDB store (no MongoDB server here; asyncz has no MongoDB store)"
    for node in ast.walk(ast.parse(text)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top != "asyncz" and importlib.util.find_spec(top) is None:
                return f"needs {top!r}, which is not installed"
    return None


def _run(script: Path, scratch: Path) -> tuple[int | None, str, str]:
    """(exit code or None when stopped, stdout, stderr)."""
    scratch.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"}
    process = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=scratch,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=RUN_SECONDS)
        return process.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate(timeout=10)
        return None, out, err


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, tuple[int | None, str, str]]:
    runnable = [s for s in _SCRIPTS if _skip_reason(s) is None]
    scratch = tmp_path_factory.mktemp("docs_src")
    started = time.monotonic()
    # Most scripts finish at once; the long-running ones mostly sleep, so a few run side by side.
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = pool.map(lambda s: _run(s, scratch / s.relative_to(_FOLDER).stem), runnable)
        outcome = dict(zip(runnable, results, strict=True))
    assert time.monotonic() - started < 120
    return outcome


@pytest.mark.skipif(_FOLDER is None, reason="Asyncz's upstream folder not found")
@pytest.mark.parametrize(
    "script", _SCRIPTS, ids=[str(s.relative_to(_FOLDER / "docs_src")) for s in _SCRIPTS]
)
def test_doc_script_runs(script: Path, outcomes: dict[Path, tuple[int | None, str, str]]) -> None:
    reason = _skip_reason(script)
    if reason is not None:
        pytest.skip(reason)
    code, out, err = outcomes[script]
    expected = EXPECTED_ERRORS.get(str(script.relative_to(_FOLDER / "docs_src")))
    if expected is not None:
        error, why = expected
        last = err.strip().splitlines()[-1] if err.strip() else ""
        assert code not in (0, None), f"expected to fail ({why}) but it ran:\n{out}\n{err}"
        assert last.split(":")[0].rsplit(".", 1)[-1] == error, f"{why}: {err}"
        return
    assert "Traceback" not in err, err
    assert code in (0, None), f"exit code {code}\n{out}\n{err}"

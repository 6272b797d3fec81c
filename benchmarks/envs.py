"""The libraries under test and the virtual environments they run from.

Each library gets its own environment under `benchmarks/.venvs/` (git-ignored), created on first
use with the interpreter running the benchmark and reused while its recipe is unchanged. Our
checkout is installed editable, so code changes need no reinstall; a changed `pyproject.toml`
(dependencies, plugin entry points) leads to a fresh environment. All environments get the same
store drivers, so the databases are reached through identical client code. Unix only, like the
measurements themselves (/proc, resource, process groups).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import venv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
VENVS = BENCH_DIR / ".venvs"

DRIVERS = ("sqlalchemy", "psycopg[binary]", "pymysql", "redis", "hiredis")


@dataclass(frozen=True)
class Library:
    lib: str  # the id used on the command line and by the adapters
    venv: str
    requirements: tuple[str, ...]
    editable: bool = False  # install REPO_ROOT in editable mode (our checkout)
    is_self: bool = False


LIBRARIES: dict[str, Library] = {
    lib.lib: lib
    for lib in (
        Library("asyncz", "self", DRIVERS, editable=True, is_self=True),
        Library("asyncz-peer", "asyncz-0.17", ("asyncz==0.17.0", *DRIVERS)),
        Library("apscheduler", "apscheduler-3.11", ("APScheduler==3.11.0", "croniter", *DRIVERS)),
        # croniter is a third opinion for cron only; it shares APScheduler's environment.
        Library("croniter", "apscheduler-3.11", ("APScheduler==3.11.0", "croniter", *DRIVERS)),
    )
}
DEFAULT_LIBS = ("asyncz", "asyncz-peer", "apscheduler", "croniter")


class EnvError(Exception):
    """An environment could not be created; its library is reported as unavailable."""


STALE = 24 * 3600  # an environment no run has used for this long is removed


def _python(path: Path) -> Path:
    return path / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def _recipe(lib: Library, base_python: str) -> str:
    # The interpreter a venv is really built on, so `python` from two venvs of one Python agree.
    base = (
        getattr(sys, "_base_executable", sys.executable)
        if base_python == sys.executable
        else base_python
    )
    parts = {"requirements": lib.requirements, "base": os.path.realpath(base)}
    if lib.editable:
        # Entry points and dependencies are recorded at install time.
        parts["pyproject"] = hashlib.sha256((REPO_ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return json.dumps(parts, sort_keys=True)


def ensure_env(
    lib: Library, base_python: str = sys.executable, log: Callable[[str], None] = print
) -> str:
    """Return the interpreter of `lib`'s environment, creating it if needed.

    An environment is never rebuilt in place: its directory is named after a hash of its recipe,
    so a second benchmark run (another interpreter, another pyproject.toml) gets its own instead
    of wiping one that is being measured. Creation is serialised with a file lock.
    """
    if lib.editable and not (REPO_ROOT / "pyproject.toml").exists():
        raise EnvError("no pyproject.toml at the repository root")
    recipe = _recipe(lib, base_python)
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:10]
    path = VENVS / f"{lib.venv}-{digest}"
    marker = path / ".asyncz-bench-recipe"
    python = _python(path)
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / f"{lib.venv}-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (python.exists() and marker.exists()):
            _create(lib, base_python, path, log)
            marker.write_text(recipe)
        marker.touch()  # "in use", for the pruning below
    _prune(lib, keep=path)
    return str(python)


def _create(lib: Library, base_python: str, path: Path, log: Callable[[str], None]) -> None:
    log(f"[bench] preparing environment {path.relative_to(REPO_ROOT)} ...")
    python = _python(path)
    try:
        if base_python == sys.executable:
            venv.EnvBuilder(clear=True, with_pip=True).create(path)
        else:
            subprocess.run([base_python, "-m", "venv", "--clear", str(path)], check=True)
        args = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        args += list(lib.requirements)
        if lib.editable:
            args += ["-e", str(REPO_ROOT)]
        done = subprocess.run(args, capture_output=True, text=True, check=False)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise EnvError(f"could not create {path}: {exc}") from exc
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "ERROR" in line] or [
            done.stderr.strip()[-300:]
        ]
        raise EnvError(f"pip install failed: {errors[-1][:300]}")


def _prune(lib: Library, keep: Path) -> None:
    """Remove this library's environments that no run has used for a day (old recipes)."""
    now = time.time()
    for old in VENVS.glob(f"{lib.venv}-*"):
        marker = old / ".asyncz-bench-recipe"
        if old == keep or not old.is_dir() or not marker.exists():
            continue
        if now - marker.stat().st_mtime > STALE:
            shutil.rmtree(old, ignore_errors=True)
            (VENVS / f"{old.name}.lock").unlink(missing_ok=True)

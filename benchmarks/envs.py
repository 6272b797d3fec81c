"""The libraries under test and the virtual environments they run from.

Each library gets its own environment under `benchmarks/.venvs/` (git-ignored), created on first
use with the interpreter running the benchmark and reused while its recipe is unchanged. Our
checkout is installed editable, so code changes need no reinstall; a changed `pyproject.toml`
(dependencies, plugin entry points) does trigger one. All environments get the same store
drivers, so the databases are reached through identical client code.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import venv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
VENVS = BENCH_DIR / ".venvs"

DRIVERS = ("sqlalchemy", "psycopg[binary]", "pymysql", "redis")


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


def _python(path: Path) -> Path:
    return path / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def _recipe(lib: Library, base_python: str) -> str:
    parts = {"requirements": lib.requirements, "base": base_python}
    if lib.editable:
        # Entry points and dependencies are recorded at install time.
        parts["pyproject"] = hashlib.sha256((REPO_ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return json.dumps(parts, sort_keys=True)


def ensure_env(
    lib: Library, base_python: str = sys.executable, log: Callable[[str], None] = print
) -> str:
    """Return the interpreter of `lib`'s environment, creating or refreshing it if needed."""
    if lib.editable and not (REPO_ROOT / "pyproject.toml").exists():
        raise EnvError("no pyproject.toml at the repository root")
    path = VENVS / lib.venv
    marker = path / ".asyncz-bench-recipe"
    recipe = _recipe(lib, base_python)
    python = _python(path)
    if python.exists() and marker.exists() and marker.read_text() == recipe:
        return str(python)
    log(f"[bench] preparing environment {path.relative_to(REPO_ROOT)} ...")
    VENVS.mkdir(parents=True, exist_ok=True)
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
    marker.write_text(recipe)
    return str(python)

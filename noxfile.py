"""Development sessions: ``nox -s tests``, ``lint``, ``typecheck``, ``demo``, ``bench``."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

EXAMPLE_PLUGIN = "tests/fixtures/asyncz-example-plugin"


@nox.session
def tests(session: nox.Session) -> None:
    """Install asyncz with every optional dependency and run the whole test suite."""
    session.install("-e", ".[all,test]")
    args = session.posargs or ["tests", "-q"]
    session.run("python", "-m", "pytest", *args, env={"PYTHONFAULTHANDLER": "1"})


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy, strict on the kernel (asyncz/core)."""
    session.install("-e", ".[all]", "mypy>=1.11")
    session.run("mypy")


@nox.session
def demo(session: nox.Session) -> None:
    """A real scheduler on the embedded SQLite store, visibly running a few tasks."""
    session.install("-e", ".[sqlalchemy]")
    session.run("python", "examples/quickstart.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks side by side with APScheduler and Asyncz (see docs/benchmarks.md)."""
    session.install("-e", ".")
    session.run(
        "python",
        "-m",
        "benchmarks",
        *session.posargs,
        env={"PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")},
    )

"""What tests/docs knows about docs/examples/: how each kind of file is run or checked, which
need a server, and how expected output is matched.

Kinds, by file name:

- ``*.py``: run in its own process (``python FILE``, working directory a fresh temporary one,
  the file's folder first on ``sys.path``), bounded in time, must exit 0; when ``FILE.out``
  exists beside it, its standard output must match (see :func:`matches`).
- ``*.console``: a shell session: lines starting with ``$ `` are commands run with bash (the
  venv's ``bin`` first on ``PATH``, in a fresh temporary folder holding a copy of the session's
  folder); the lines after a command are its expected output (stdout and stderr), matched the
  same way.
- ``*.toml``: ``pyproject.toml`` must declare an ``asyncz`` entry point; any other is a tasks
  file that :func:`asyncz.tasksfile.load_tasks_file` must accept.
- ``*.out``: the expected output of the ``.py`` of the same name (checked with it).
- anything else: a checker named in :data:`CHECKERS`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
#: folders of docs/examples/ that another test runs as written
RUN_ELSEWHERE = {
    "celery_fleet": "tests/plugins/executors/test_celery_docs.py (needs RabbitMQ)",
}
#: example -> the server it needs; found as the store tests find them (tests/plugins/stores)
SERVICES = {
    "getting-started/postgres.py": "postgresql",
    "cluster/three_processes.py": "postgresql",
    "cluster/node.py": "postgresql",
    "cluster/heartbeats.py": "redis",
}
POSTGRES_URL = os.environ.get(
    "ASYNCZ_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("ASYNCZ_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
#: what the examples read to find the servers (with the same loopback defaults)
SERVICE_ENV = {"DATABASE_URL": POSTGRES_URL, "REDIS_URL": REDIS_URL}
#: example -> its command-line arguments when run by the tests (a bounded run)
RUN_ARGS = {"cluster/node.py": ["1"]}
#: example -> the shell session that runs it (it needs what the session installs first) or,
#: for a file that is not a program, that shows it (a distribution's README in its sdist)
RUN_BY_SESSION = {
    "plugins/aligned/use_aligned.py": "plugins/aligned/try_and_test.console",
    "plugins/aligned/asyncz-aligned/README.md": "plugins/aligned/publish.console",
}


def example_files() -> list[Path]:
    out = []
    for path in sorted(EXAMPLES.rglob("*")):
        rel = path.relative_to(EXAMPLES)
        if not path.is_file() or rel.parts[0] in RUN_ELSEWHERE or "__pycache__" in rel.parts:
            continue
        if path.suffix == ".out" or path.suffix == ".pyc":
            continue
        out.append(path)
    return out


def matches(expected: str, actual: str) -> bool:
    """``expected`` matches ``actual`` line by line; ``...`` in a line matches any text, and a
    line that is only ``...`` matches any number of lines (none included)."""
    want = expected.rstrip("\n").splitlines()
    got = actual.rstrip("\n").splitlines()
    patterns = [
        None if line.strip() == "..." else re.compile(_pattern(line.rstrip())) for line in want
    ]

    def walk(i: int, j: int, memo: dict[tuple[int, int], bool]) -> bool:
        key = (i, j)
        if key in memo:
            return memo[key]
        if i == len(patterns):
            result = j == len(got)
        elif patterns[i] is None:
            result = walk(i + 1, j, memo) or (j < len(got) and walk(i, j + 1, memo))
        else:
            pattern = patterns[i]
            assert pattern is not None
            result = (
                j < len(got)
                and pattern.fullmatch(got[j].rstrip()) is not None
                and walk(i + 1, j + 1, memo)
            )
        memo[key] = result
        return result

    return walk(0, 0, {})


def _pattern(line: str) -> str:
    return ".*".join(re.escape(part) for part in line.split("..."))


def parse_console(text: str) -> list[tuple[str, str]]:
    """[(command, expected output)] from a shell session file."""
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# "):
            continue  # a comment for the reader
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
        elif line.strip():
            raise ValueError(f"output before the first command: {line!r}")
    return [(command, "\n".join(lines)) for command, lines in steps]

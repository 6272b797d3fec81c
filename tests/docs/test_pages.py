"""The pages of the documentation site show only executed code, and name only what exists.

- Every fenced block of every page is an include (``--8<-- "path"``) of a file under
  docs/examples/, which tests/docs/test_examples.py runs or checks.
- Exception types, extras, scheduler options, event codes and environment variables the pages
  name in backticks exist in the code.
"""

from __future__ import annotations

import builtins
import importlib
import re
import sys
from pathlib import Path

import pytest

from tests.docs.examples import EXAMPLES, ROOT, RUN_ELSEWHERE

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if EXAMPLES not in p.parents)
#: pages whose blocks are not includes yet, and why (each one is a debt, named here)
NOT_YET: dict[str, str] = {}
FENCE = re.compile(r"^( *)(```|~~~)(.*)$")
INCLUDE = re.compile(r'^--8<-- "([^"]+)"$')


def _blocks(text: str) -> list[tuple[int, list[str]]]:
    """(line number, body lines) of every fenced block."""
    blocks, body, start, fence = [], [], 0, None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence, start, body = (match.group(1), match.group(2)), number, []
        elif fence is not None and line.strip() == fence[1]:
            blocks.append((start, body))
            fence = None
        elif fence is not None:
            body.append(line[len(fence[0]) :])
    assert fence is None, f"a fence opened at line {start} is never closed"
    return blocks


def _page_id(path: Path) -> str:
    return str(path.relative_to(DOCS))


@pytest.mark.parametrize("page", PAGES, ids=[_page_id(p) for p in PAGES])
def test_every_block_is_an_executed_example(page: Path) -> None:
    if _page_id(page) in NOT_YET:
        pytest.skip(NOT_YET[_page_id(page)])
    for line, body in _blocks(page.read_text()):
        lines = [b for b in body if b.strip()]
        assert lines, f"{page.name}:{line}: an empty block"
        for entry in lines:
            match = INCLUDE.match(entry.strip())
            assert match, f"{page.name}:{line}: a block that is not an include: {entry!r}"
            target = EXAMPLES / match.group(1)
            assert target.is_file(), f"{page.name}:{line}: {target} does not exist"
            kind = target.suffix
            rel = target.relative_to(EXAMPLES)
            ran = kind in {".py", ".console", ".toml", ".out", ".pip", ".tree", ".nginx", ".sh"}
            assert ran or rel.parts[0] in RUN_ELSEWHERE, f"{rel}: not run by tests/docs"


def _backticked() -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for page in PAGES:
        for name in re.findall(r"`([^`\n]+)`", page.read_text()):
            names.setdefault(name, set()).add(_page_id(page))
    return names


NAMES = _backticked()
#: where documented exception types may live
EXCEPTION_HOMES = [
    "asyncz.exceptions",
    "asyncz.triggers",
    "asyncz.executors",
    "asyncz.tasksfile",
    "asyncz.core.plugins",
    "asyncz.contrib.dashboard",
    "asyncz.plugins.executors.celery",
]
#: exceptions of other libraries the pages name, with their home
FOREIGN = {
    "ValidationError": "pydantic",
    "KilledWorker": "distributed",
    "ModuleNotFoundError": "builtins",
}


def test_documented_exceptions_exist() -> None:
    pattern = re.compile(r"^([A-Z][A-Za-z]+(?:Error|Exception|Warning|Died|Lost|Unavailable))$")
    missing = []
    for name, pages in sorted(NAMES.items()):
        match = pattern.match(name.split(".")[-1])
        if not match:
            continue
        short = match.group(1)
        if hasattr(builtins, short) or short in FOREIGN:
            continue
        if not any(hasattr(importlib.import_module(home), short) for home in EXCEPTION_HOMES):
            missing.append(f"{short} ({', '.join(sorted(pages))})")
    assert not missing, "the pages name exceptions the code does not have: " + ", ".join(missing)


def test_documented_extras_exist() -> None:
    extras = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    texts = [p.read_text() for p in PAGES] + [
        p.read_text() for p in EXAMPLES.rglob("*") if p.is_file() and p.suffix != ".pyc"
    ]
    named = {e for t in texts for g in re.findall(r"asyncz\[([\w,-]+)\]", t) for e in g.split(",")}
    assert named, "no extra found: the pattern is wrong"
    assert named <= extras, f"unknown extras named: {sorted(named - extras)}"


def test_documented_scheduler_options_exist() -> None:
    from asyncz.schedulers import AsyncIOScheduler

    options = AsyncIOScheduler().option_names
    table = (DOCS / "schedulers.md").read_text().split("| option | default | meaning |")[1]
    rows = re.findall(r"^\| `(\w+)` \|", table.split("\n\n")[0], re.M)
    assert len(rows) > 5
    assert set(rows) <= options, f"not scheduler options: {sorted(set(rows) - options)}"


def test_documented_event_codes_exist() -> None:
    import asyncz.events

    codes = {n for n in NAMES if re.fullmatch(r"(TASK|SCHEDULER|STORE|EXECUTOR|ALL)_[A-Z_]+", n)}
    assert codes
    missing = sorted(c for c in codes if not hasattr(asyncz.events, c))
    assert not missing, f"event codes the code does not have: {missing}"


def test_documented_environment_variables_exist() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "asyncz").rglob("*.py"))
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py"))
    named = {n for n in NAMES if re.fullmatch(r"ASYNCZ_[A-Z_]+", n)}
    missing = sorted(n for n in named if n not in source and n not in tests)
    assert not missing, f"environment variables nothing reads: {missing}"

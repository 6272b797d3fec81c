"""Every file under docs/examples/ runs (or is checked) as the pages show it.

The pages include these files and nothing else (tests/docs/test_pages.py), so a page cannot show
code that does not work. How each kind of file is run is described in tests/docs/examples.py.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.examples import (
    EXAMPLES,
    ROOT,
    RUN_ARGS,
    RUN_BY_SESSION,
    SERVICE_ENV,
    SERVICES,
    example_files,
    matches,
    parse_console,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TIMEOUT = 60
BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    env = {**os.environ, **SERVICE_ENV}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ASYNCZ_SOURCE"] = str(ROOT)  # where a session finds asyncz's contract suites
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; under CI=true the real server is required")
    pytest.skip(message)


def _require(service: str) -> None:
    try:
        if service == "postgresql":
            import sqlalchemy

            engine = sqlalchemy.create_engine(SERVICE_ENV["DATABASE_URL"])
            with engine.connect():
                pass
            engine.dispose()
        elif service == "redis":
            import redis

            redis.Redis.from_url(SERVICE_ENV["REDIS_URL"]).ping()
    except Exception as exc:
        _unavailable(f"{service} is not reachable ({type(exc).__name__}: {exc})")


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(EXAMPLES)) for p in paths]


FILES = example_files()


@pytest.mark.parametrize("path", FILES, ids=_ids(FILES))
def test_example(path: Path, tmp_path: Path) -> None:
    rel = str(path.relative_to(EXAMPLES))
    if rel in RUN_BY_SESSION:
        session = (EXAMPLES / RUN_BY_SESSION[rel]).read_text()
        shown = f"python {path.name}" if path.suffix == ".py" else f"/{path.name}"
        assert shown in session, f"{RUN_BY_SESSION[rel]} does not run or show {rel}"
        return
    if rel in SERVICES:
        _require(SERVICES[rel])
    if path.suffix == ".py":
        _run_python(path, tmp_path)
    elif path.suffix == ".console":
        _run_console(path, tmp_path)
    elif path.suffix == ".toml":
        _check_toml(path)
    elif path.suffix in CHECKERS:
        CHECKERS[path.suffix](path)
    else:
        pytest.fail(f"{rel}: no way to run or check a {path.suffix!r} file (tests/docs/)")


def _run_python(path: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(path), *RUN_ARGS.get(str(path.relative_to(EXAMPLES)), [])],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    expected = path.with_suffix(".out")
    if expected.exists():
        assert matches(expected.read_text(), result.stdout), (
            f"output differs from {expected.name}:\n{result.stdout}"
        )


def _run_console(path: Path, tmp_path: Path) -> None:
    work = tmp_path / "session"
    shutil.copytree(path.parent, work, ignore=shutil.ignore_patterns("__pycache__"))
    for command, expected in parse_console(path.read_text()):
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=work,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        output = result.stdout + result.stderr
        assert matches(expected, output), f"$ {command}\n{output}\n(expected)\n{expected}"


def _check_toml(path: Path) -> None:
    if path.name == "pyproject.toml":
        data = tomllib.loads(path.read_text())
        assert data["project"]["entry-points"]["asyncz"], "no asyncz entry point"
        return
    from asyncz.tasksfile import load_tasks_file

    load_tasks_file(path)


def _check_pip(path: Path) -> None:
    """``.pip``: install lines; every extra they name is one asyncz declares."""
    extras = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        assert line.startswith("pip install "), line
        _check_pip_line(line, extras)


def _check_pip_line(line: str, extras: set[str] | None = None) -> None:
    if extras is None:
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        extras = set(pyproject["project"]["optional-dependencies"])
    for group in re.findall(r"(?:asyncz|\.)\[([^\]]+)\]", line):
        assert set(group.split(",")) <= extras, f"{line}: unknown extra"


def _check_tree(path: Path) -> None:
    """``.tree``: a layout; every module, file and folder it names exists, under the
    repository's top (``asyncz/``) or beside the ``.tree`` file (an example's own folder)."""
    stack: list[tuple[int, Path]] = []
    for line in path.read_text().splitlines():
        match = re.match(r"^( *)([\w./-]+)", line)
        if not match or not line.strip():
            continue
        indent, name = len(match.group(1)), match.group(2)
        if indent > 0 and not name.endswith(("/", ".py", ".toml", ".md")):
            continue  # a description continued on the next line
        while stack and stack[-1][0] >= indent:
            stack.pop()
        top = path.parent if (path.parent / name.rstrip("/")).exists() else ROOT
        base = stack[-1][1] if stack else top
        target = base / name.rstrip("/")
        assert target.exists(), f"{path.name}: {target.relative_to(ROOT)} does not exist"
        if name.endswith("/"):
            stack.append((indent, target))


def _check_nginx(path: Path) -> None:
    """``.nginx``: balanced braces, and the header the dashboard reads."""
    text = path.read_text()
    assert text.count("{") == text.count("}")
    reader = ROOT / "asyncz/contrib/dashboard/admin/middleware/forward_root_path.py"
    assert "X-Forwarded-Prefix" in text
    assert "x-forwarded-prefix" in reader.read_text().lower()


def _check_commands(path: Path) -> None:
    """``.sh``: commands a reader types that a test cannot run as they are (a service that runs
    for ever, a full benchmark run). Each is checked against what it calls: an ``asyncz``
    command and its options against its ``--help``, a nox session against noxfile.py,
    ``python -m benchmarks`` options against its parser, ``pip install`` extras against
    pyproject.toml."""
    for raw in path.read_text().splitlines():
        line = raw.split("  #")[0].strip()
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line)
        if words[0] == "asyncz":
            command = [w for w in words[1:2] if not w.startswith("-")]
            result = subprocess.run(
                [str(BIN / "asyncz"), *command, "--help"], capture_output=True, text=True,
                timeout=TIMEOUT, env=_env(),
            )  # fmt: skip
            assert result.returncode == 0, f"{line}: {result.stderr}"
            for option in (w.split("=")[0] for w in words if w.startswith("--")):
                assert option in result.stdout, f"{line}: asyncz has no option {option}"
        elif words[:2] == ["nox", "-s"]:
            assert f"def {words[2]}(" in (ROOT / "noxfile.py").read_text(), line
        elif words[:3] == ["python", "-m", "benchmarks"]:
            from benchmarks.runner import parse_args

            parse_args(words[3:])
        elif words[:2] == ["pip", "install"]:
            _check_pip_line(line)
        else:
            pytest.fail(f"{path.name}: no way to check {line!r}")


CHECKERS = {
    ".pip": _check_pip,
    ".tree": _check_tree,
    ".nginx": _check_nginx,
    ".sh": _check_commands,
}


def test_matches_wildcards() -> None:
    assert matches("a\n...\nd", "a\nb\nc\nd")
    assert matches("a\n...\nd", "a\nd")
    assert matches("took ...s", "took 0.1s")
    assert not matches("a\nd", "a\nb\nd")

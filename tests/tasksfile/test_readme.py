"""The README's first command: the asyncz console script runs examples/tasks.toml, tasks are
seen firing within seconds, and Ctrl-C (SIGINT) stops it cleanly. (Installing into a new
virtual environment, the command's first part, is left to the fresh-clone check.)"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMAND = "asyncz start --config examples/tasks.toml"


def first_command() -> str:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block is not None, "the README's first section has no bash block"
    return block.group(1).splitlines()[0]


def test_the_readmes_first_command_installs_the_cli_and_starts_the_example() -> None:
    line = first_command()
    assert line.startswith("python3 -m venv .venv && .venv/bin/pip install -e '.[cli")
    assert f".venv/bin/{COMMAND}" in line


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_the_example_service_prints_within_seconds_and_stops_on_sigint(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("asyncz")
    if not script.exists():
        script_path = shutil.which("asyncz")
        if script_path is None:
            pytest.skip("the asyncz console script is not installed")
        script = Path(script_path)
    pytest.importorskip("sayer")
    pytest.importorskip("sqlalchemy")
    # Started from a fresh directory, as a user would from a clone (the store lands there).
    work = tmp_path / "clone"
    shutil.copytree(ROOT / "examples", work / "examples")
    process = subprocess.Popen(
        [str(script), *COMMAND.split()[1:]],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "example-service: alive" in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # The heartbeat runs every 2 s; the bound only keeps a broken run from hanging.
        assert seen.wait(30), "".join(lines)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    reader.join(5)
    assert process.stderr is not None
    err = process.stderr.read()
    out = "".join(lines)
    assert process.returncode == 0, err
    assert "tasks file examples/tasks.toml: 4 added" in out
    assert (work / "asyncz.db").exists()

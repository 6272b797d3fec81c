"""The README's example and the programs in examples/ run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_example_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"## A first program\n\n```python\n(.*?)```", readme, re.S)
    assert code is not None, "the README's first program is missing"
    result = subprocess.run(
        [sys.executable, "-c", code.group(1)], capture_output=True, text=True, timeout=30, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    ticks = result.stdout.splitlines()
    assert ticks[:3] == ["tick from interval"] * 3


def test_quickstart_runs_tasks_visibly(tmp_path: Path) -> None:
    database = tmp_path / "demo.sqlite"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "quickstart.py"),
            "--seconds",
            "2.2",
            "--database",
            str(database),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"store: {database}" in out
    assert out.count("           ") == 4  # the four tasks listed at start
    assert "fetched 'startup'" in out
    assert out.count("heartbeat (a plain function") == 2
    assert "flaky raised RuntimeError" in out
    assert "fetched 'weather'" in out
    assert "tasks kept in the store: ['fetch-weather', 'heartbeat']" in out
    assert database.exists()

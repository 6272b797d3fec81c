"""Where Asyncz 0.17.1's published tests, docs and doc examples are on this machine.

They are a yardstick, never copied into the project: tests read them where they lie. The folder
is found through ``ASYNCZ_UPSTREAM``, else beside the repository (``../shared/asyncz-upstream``),
else at the workplace's shared path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_CANDIDATES = [
    os.environ.get("ASYNCZ_UPSTREAM"),
    str(ROOT.parent / "shared" / "asyncz-upstream"),
    "/work/shared/asyncz-upstream",
]


def upstream_folder() -> Path | None:
    for candidate in _CANDIDATES:
        if candidate and (Path(candidate) / "run.sh").is_file():
            return Path(candidate)
    return None


def require_upstream() -> Path:
    """The folder, or a skip (a failure under CI, where it must be present)."""
    folder = upstream_folder()
    if folder is None:
        reason = "Asyncz's upstream folder not found (set ASYNCZ_UPSTREAM)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return folder

"""One measurement: one case against one library, in the process this module runs in.

The runner starts a fresh interpreter per measurement (from the library's own environment) with
`bootstrap_command`, and reads back a single line, `RESULT_MARKER` followed by JSON, from stdout.
A library that lacks a feature yields status "n/a" with the reason; a workload that ran but did
not do its job yields "error"; neither stops the run.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import logging
import platform
import sys
import traceback
from pathlib import Path
from typing import Any

from .adapters import get_adapter
from .workloads import ServerUnavailable, WorkloadError, _na_reason, get_case

RESULT_MARKER = "ASYNCZ-BENCH-RESULT "
PACKAGE_DIR = Path(__file__).resolve().parent

# Run with -I so neither the current directory nor PYTHONPATH can put this checkout's `asyncz`
# in front of a peer's: the package is loaded from its path, and only the "asyncz" library (our
# checkout) gets the repository root on sys.path.
_BOOTSTRAP = """\
import importlib.util, sys
pkg, root = sys.argv[1], sys.argv[2]
if root:
    sys.path.insert(0, root)
spec = importlib.util.spec_from_file_location(
    "benchmarks", pkg + "/__init__.py", submodule_search_locations=[pkg])
mod = importlib.util.module_from_spec(spec)
sys.modules["benchmarks"] = mod
spec.loader.exec_module(mod)
from benchmarks.worker import main
sys.exit(main(sys.argv[3:]))
"""

DEPENDENCIES = ("SQLAlchemy", "psycopg", "PyMySQL", "redis", "croniter", "tzdata", "pydantic")


def bootstrap_command(
    python: str, lib: str, case_id: str, scale: float, repo_root: Path | None
) -> list[str]:
    root = str(repo_root) if repo_root else ""
    return [
        python,
        "-I",
        "-c",
        _BOOTSTRAP,
        str(PACKAGE_DIR),
        root,
        "--lib",
        lib,
        "--case",
        case_id,
        "--scale",
        repr(scale),
    ]


class _Collect(logging.Handler):
    """Keeps warnings and errors libraries log from inside their loops, where they'd be lost."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.first) < 5:
            self.first.append(f"{record.levelname} {record.name}: {record.getMessage()}"[:300])


def _versions() -> dict[str, str]:
    found = {}
    for dist in DEPENDENCIES:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def run(lib: str, case_id: str, scale: float) -> dict[str, Any]:
    adapter = get_adapter(lib)
    case = get_case(case_id)
    out: dict[str, Any] = {
        "lib": lib,
        "label": adapter.label,
        "case": case_id,
        "scale": scale,
        "python": platform.python_version(),
        "status": "ok",
        "reason": "",
        "metrics": {},
        "counts": {},
        "extra": {},
    }
    collect = _Collect()
    logging.getLogger().addHandler(collect)
    try:
        try:
            out["version"] = adapter.version()
            out["origin"] = adapter.origin()
        except Exception as exc:
            raise ImportError(f"{adapter.label} is not importable: {exc}") from exc
        result = asyncio.run(case.run(adapter, case.name, scale))
        out.update(result)
    except ServerUnavailable as exc:
        out.update(status="skipped", reason=str(exc))
    except WorkloadError as exc:
        out.update(status="error", reason=str(exc))
    except Exception as exc:
        reason = _na_reason(exc)
        if reason is not None:
            out.update(status="n/a", reason=f"not implemented: {reason}")
        else:
            last = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{Path(last.filename).name}:{last.lineno}"
            out.update(status="error", reason=f"{type(exc).__name__}: {exc} (at {where})")
    finally:
        logging.getLogger().removeHandler(collect)
    out["deps"] = _versions()
    out["log_warnings"] = {"count": collect.count, "first": collect.first}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.worker")
    parser.add_argument("--lib", required=True)
    parser.add_argument("--case", required=True)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    result = run(args.lib, args.case, args.scale)
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0

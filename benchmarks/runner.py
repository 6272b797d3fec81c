"""`python -m benchmarks`: prepare the environments, run every case, library and repeat in
a fresh process, print the report and write it to `benchmarks/results/<timestamp>.md`.

Runs are sequential on purpose: on a small machine two measurements at once would measure each
other. Library order rotates from case to case and repeat to repeat so that no library always
runs first (cold caches) or right after the heaviest one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import report
from .adapters import ADAPTERS
from .charts import write_charts
from .envs import DEFAULT_LIBS, LIBRARIES, REPO_ROOT, EnvError, ensure_env
from .worker import RESULT_MARKER, bootstrap_command
from .workloads import CASES, WORKLOADS, Case

DOCS = REPO_ROOT / "docs" / "benchmarks.md"
DOCS_CHARTS = REPO_ROOT / "docs" / "images" / "benchmarks"
DOCS_BEGIN, DOCS_END = "<!-- latest-results:begin -->", "<!-- latest-results:end -->"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat; (0, 0) elsewhere."""
    try:
        with open("/proc/stat") as f:
            # user nice system idle iowait irq softirq steal; guest time is already in user.
            ticks = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0, 0.0
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


def wait_for_quiet(limit: float, threshold: float = 0.5) -> float:
    """Wait up to `limit` seconds for other processes to use less than `threshold` cores.

    Returns the seconds waited. Between measurements the runner itself is idle, so whatever
    /proc/stat shows as busy is someone else.
    """
    waited = 0.0
    while True:
        busy0, total0 = _cpu_seconds()
        time.sleep(0.5)
        busy1, total1 = _cpu_seconds()
        cores = os.cpu_count() or 1
        load = (busy1 - busy0) / ((total1 - total0) / cores) if total1 > total0 else 0.0
        waited += 0.5
        if load < threshold or waited >= limit:
            return waited
        time.sleep(1.5)
        waited += 1.5


def _stop(proc: subprocess.Popen[str]) -> None:
    """Interrupt the worker so its cleanup (tables, keys, files) runs; kill it if it won't stop."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def run_case(
    python: str,
    lib: str,
    case: Case,
    scale: float,
    *,
    timeout: float | None = None,
    repo_root: Path | None = None,
) -> dict[str, Any]:
    """One fresh process: `case` against `lib` with `python`; always returns a result dict.

    Also records `background_cores`: the CPU other processes on the machine used meanwhile, in
    cores, so that a measurement disturbed by a busy machine can be told apart.
    """
    cmd = bootstrap_command(python, lib, case.id, scale, repo_root)
    limit = timeout if timeout is not None else case.timeout
    base = {"lib": lib, "case": case.id, "scale": scale, "metrics": {}, "counts": {}, "extra": {}}
    busy0, _ = _cpu_seconds()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    # A new session so that stopping the worker reaches any helper process it started.
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        _stop(proc)
        return {**base, "status": "error", "reason": f"timed out after {limit:.0f} s"}
    except KeyboardInterrupt:
        _stop(proc)
        raise
    wall = time.perf_counter() - t0
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (children1.ru_utime - children0.ru_utime) + (children1.ru_stime - children0.ru_stime)
    busy1, _ = _cpu_seconds()
    background = max(0.0, (busy1 - busy0 - own) / wall) if busy1 else None
    result: dict[str, Any] | None = None
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            result = json.loads(line[len(RESULT_MARKER) :])
            break
    if result is None:
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        result = {**base, "status": "error", "reason": f"worker exited {proc.returncode}: {tail}"}
    result["background_cores"] = background
    return result


def _check_origin(result: dict[str, Any], snapshot: Path) -> None:
    """Fail loudly if a peer measured this checkout's code or the other way round."""
    origin = result.get("origin")
    if not origin or result.get("status") not in ("ok", "n/a"):
        return
    where = Path(origin).resolve()
    ours = where.is_relative_to(snapshot) or (
        where.is_relative_to(REPO_ROOT) and ".venvs" not in where.parts
    )
    expected = snapshot if result["lib"] == "asyncz" else None
    if (expected is not None and not where.is_relative_to(expected)) or (expected is None and ours):
        result["status"] = "error"
        result["reason"] = f"measured the wrong code: {result['lib']} imported from {origin}"


def snapshot_checkout(into: Path) -> str:
    """Copy this checkout's `asyncz` package into `into`; returns what was copied, for the report.

    A full run takes a quarter of an hour and the working tree may be edited meanwhile; measuring
    a copy keeps every repeat on the same code. Workers of this checkout put `into` first on
    sys.path; its environment still provides the dependencies and plugin entry points.
    """
    shutil.copytree(
        REPO_ROOT / "asyncz", into / "asyncz", ignore=shutil.ignore_patterns("__pycache__")
    )
    git = ["git", "-C", str(REPO_ROOT)]
    try:
        rev = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "asyncz", "pyproject.toml"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "a copy of the working tree (not a git checkout)"
    return f"commit {rev}" + (" plus uncommitted changes" if dirty else "")


def select_cases(names: Sequence[str] | None, *, skip_servers: bool) -> list[Case]:
    chosen = list(CASES)
    if names:
        unknown = [n for n in names if n not in WORKLOADS and n not in {c.id for c in CASES}]
        if unknown:
            raise SystemExit(
                f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)} "
                f"or a case id ({', '.join(c.id for c in CASES)})"
            )
        chosen = [c for c in CASES if c.workload in names or c.id in names]
    if skip_servers:
        chosen = [c for c in chosen if c.server is None]
    return chosen


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument(
        "--libs",
        default=",".join(DEFAULT_LIBS),
        help=f"comma-separated, from {', '.join(LIBRARIES)} (default: all)",
    )
    p.add_argument(
        "--workloads",
        default="",
        help=f"comma-separated workloads or case ids, from {', '.join(WORKLOADS)} (default: all)",
    )
    p.add_argument("--repeats", type=int, default=None, help="processes per case and library (3)")
    p.add_argument(
        "--scale", type=float, default=None, help="multiplies task counts and fixed durations (1.0)"
    )
    p.add_argument(
        "--quick", action="store_true", help="a fast pass: scale 0.1 and one repeat unless given"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "benchmarks" / "results",
        help="directory for <timestamp>.md and the raw <timestamp>.json",
    )
    p.add_argument(
        "--self-python",
        default=None,
        help="interpreter for this checkout instead of benchmarks/.venvs/self "
        "(it must be able to import asyncz's dependencies)",
    )
    p.add_argument(
        "--skip-servers",
        action="store_true",
        help="leave out the PostgreSQL, MariaDB and Redis cases",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each measurement, wait up to this long for other processes to use less "
        "than half a core (default 0: do not wait; the report says how busy the machine was)",
    )
    p.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="re-render the report of an earlier run from its raw <timestamp>.json; no measuring",
    )
    p.add_argument(
        "--update-docs",
        action="store_true",
        help="also replace the latest-results section of docs/benchmarks.md",
    )
    args = p.parse_args(argv)
    args.scale = args.scale if args.scale is not None else (0.1 if args.quick else 1.0)
    args.repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if args.repeats < 1 or args.scale <= 0:
        p.error("--repeats must be >= 1 and --scale > 0")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Treat a polite kill like Ctrl-C, so the running worker is stopped and cleans up after itself.
    signal.signal(signal.SIGTERM, _interrupt)
    if args.from_json:
        data = json.loads(args.from_json.read_text())
        meta = data["meta"]
        results: report.Results = {}
        for r in data["results"]:
            results.setdefault((r["case"], r["lib"]), []).append(r)
        cases = [c for c in CASES if c.id in meta["cases"]]
        publish(results, meta, cases, args.from_json.with_suffix(".md"), args.update_docs)
        return 0
    libs = [lib.strip() for lib in args.libs.split(",") if lib.strip()]
    unknown = [lib for lib in libs if lib not in LIBRARIES]
    if unknown:
        raise SystemExit(
            f"unknown library {', '.join(unknown)}; choose from {', '.join(LIBRARIES)}"
        )
    cases = select_cases(
        [w.strip() for w in args.workloads.split(",") if w.strip()], skip_servers=args.skip_servers
    )
    started = datetime.now(timezone.utc)
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="asyncz-bench-checkout-") as tmp:
        snapshot = Path(tmp).resolve()
        measured = snapshot_checkout(snapshot) if "asyncz" in libs else ""
        results, unavailable = measure(args, libs, cases, snapshot)
    meta = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "scale": args.scale,
        "repeats": args.repeats,
        "wall_s": time.perf_counter() - t_start,
        "repo_root": str(REPO_ROOT),
        "unavailable": unavailable,
        "libs": libs,
        "cases": [c.id for c in cases],
        "self_measured": measured,
    }
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    # Raw data first, so a failure while rendering loses nothing. Fire times are kept for one
    # repeat per library: enough to redo the cross-check with --from-json.
    raw = []
    for runs in results.values():
        for i, r in enumerate(runs):
            keep = i == 0 or "fires" not in r.get("extra", {})
            raw.append(r if keep else dict(r, extra={**r["extra"], "fires": {}}))
    (args.out / f"{stamp}.json").write_text(json.dumps({"meta": meta, "results": raw}))
    publish(results, meta, cases, args.out / f"{stamp}.md", args.update_docs)
    return 0


def measure(
    args: argparse.Namespace, libs: list[str], cases: list[Case], snapshot: Path
) -> tuple[report.Results, dict[str, str]]:
    labels = {lib: ADAPTERS[lib].label for lib in libs}
    pythons: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    for lib in libs:
        try:
            if lib == "asyncz" and args.self_python:
                pythons[lib] = args.self_python
            else:
                pythons[lib] = ensure_env(LIBRARIES[lib], log=log)
        except EnvError as exc:
            unavailable[lib] = str(exc)
            log(f"[bench] {labels[lib]} unavailable: {exc}")

    plan = [
        (case, lib)
        for case in cases
        for lib in libs
        if case.schedulers_only is False or ADAPTERS[lib].is_scheduler
    ]
    results: report.Results = {}
    for case, lib in plan:
        if lib in unavailable:
            reason = f"not implemented: not installable: {unavailable[lib]}"
            results[(case.id, lib)] = [
                {"lib": lib, "case": case.id, "status": "n/a", "reason": reason, "metrics": {}}
            ]
    total = sum(1 for _, lib in plan if lib not in unavailable) * args.repeats
    done = 0
    for repeat in range(args.repeats):
        for index, case in enumerate(cases):
            order = [lib for c, lib in plan if c is case and lib not in unavailable]
            shift = (repeat + index) % len(order) if order else 0
            for lib in order[shift:] + order[:shift]:
                done += 1
                if args.wait_quiet:
                    wait_for_quiet(args.wait_quiet)
                t0 = time.perf_counter()
                root = snapshot if lib == "asyncz" else None
                result = run_case(pythons[lib], lib, case, args.scale, repo_root=root)
                _check_origin(result, snapshot)
                results.setdefault((case.id, lib), []).append(result)
                note = result["status"]
                if note != "ok":
                    note += f": {report._short(result['reason'], 100)}"
                log(
                    f"[bench] {done}/{total} {case.id} · {labels[lib]} · repeat {repeat + 1}: "
                    f"{note} ({time.perf_counter() - t0:.1f} s)"
                )
    return results, unavailable


def publish(
    results: report.Results, meta: dict[str, Any], cases: list[Case], path: Path, docs: bool
) -> None:
    """Print the report, write it to `path`, and optionally into docs/benchmarks.md."""
    labels = {lib: ADAPTERS[lib].label for lib in meta["libs"]}
    text = report.render(results, libs=meta["libs"], cases=cases, meta=meta, labels=labels)
    print(text)
    path.write_text(text + "\n")
    log(f"[bench] wrote {path}")
    # The side-by-side figures as charts, beside the report (and, with docs, beside the page).
    folder = path.with_name(path.stem + "-charts")
    charts = write_charts(results, cases, meta["libs"], labels, folder)
    if charts:
        log(f"[bench] wrote {len(charts)} chart(s) to {folder}")
    if docs:
        for chart in charts.values():
            (DOCS_CHARTS / chart.name).parent.mkdir(parents=True, exist_ok=True)
            (DOCS_CHARTS / chart.name).write_bytes(chart.read_bytes())
        images = [f"![{w}](images/benchmarks/{c.name})" for w, c in charts.items()]
        update_docs(
            text + ("\n\n## Charts\n\n" + "\n\n".join(images) if images else ""),
            f"{path.parent.name}/{path.name}",
        )


def update_docs(text: str, source: str) -> None:
    """Replace the marked section of docs/benchmarks.md with this run's tables."""
    doc = DOCS.read_text()
    if DOCS_BEGIN not in doc or DOCS_END not in doc:
        log(f"[bench] {DOCS} has no {DOCS_BEGIN} marker; not updated")
        return
    body = re.sub(r"^# .*\n", "", text, count=1)  # the doc has its own title
    body = re.sub(r"^## ", "### ", body, flags=re.MULTILINE)
    block = f"{DOCS_BEGIN}\n_From `benchmarks/{source}`._\n\n{body.strip()}\n{DOCS_END}"
    head, rest = doc.split(DOCS_BEGIN, 1)
    DOCS.write_text(head + block + rest.split(DOCS_END, 1)[1])
    log(f"[bench] updated {DOCS}")

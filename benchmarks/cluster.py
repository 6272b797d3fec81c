"""`python -m benchmarks.cluster`: fire times per second of several schedulers sharing one store.

Two questions, measured in one run (issue 13, "Benchmark"):

1. **Scaling.** 1, 2 and 4 nodes — each an `AsyncIOScheduler` in a process of its own
   (`benchmarks.cluster_node`) — on one PostgreSQL table, one Redis key prefix or one SQLite
   file. The driver adds `--tasks` one-off tasks (a no-op coroutine function referenced as
   `benchmarks.cluster_node:noop`) with one bulk `store.add_tasks`, all due at one moment a few
   seconds ahead, then starts the nodes; the rate is the number of tasks over the time from the
   due moment until the last of them executed (on whichever node).
2. **The cost of run records** on single-node dispatch from SQLite and PostgreSQL: the same
   one-node workload with run records (the default: `fire_tasks`) and without them (the node
   sets `store.fire_tasks = None`, so the engine releases with `release_tasks`), the two run
   back to back, in alternating order from repeat to repeat.

Every measurement gets a fresh table (with its `_version`, `_instances` and `_runs` tables) or
key prefix, removed afterwards whatever happened, and is checked: every task executed exactly
once (from the nodes' own lists of executed runs) and the store holds one `succeeded` run record
per task (none without run records). Measurements run one after another, configurations rotating
from repeat to repeat; the load average and the CPU other processes used are recorded around
each one, since the numbers mean little on a busy machine. The nodes run a copy of this
checkout's `asyncz` taken at the start, so edits made meanwhile do not change what is measured.

The report (Markdown) and the raw results (JSON) go to `--out` as `cluster-<timestamp>.md/json`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .envs import REPO_ROOT
from .report import machine_info
from .runner import _cpu_seconds, snapshot_checkout, wait_for_quiet
from .workloads import open_backend, server_reachable, server_url

UTC = timezone.utc
DASH, TIMES = "\N{EN DASH}", "\N{MULTIPLICATION SIGN}"
BACKENDS = ("postgresql", "redis", "sqlite")
#: The server names of `benchmarks.workloads` (URLs, reachability, clean-up).
SERVER = {"postgresql": "postgres", "redis": "redis", "sqlite": "sqlite"}
RECORD_BACKENDS = ("sqlite", "postgresql")  # the run-record comparison
NOOP = "benchmarks.cluster_node:noop"
GOAL_RATE = 2_000.0  # fires/s at 4 nodes
GOAL_RECORDS = 0.5  # throughput with run records / without


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


@dataclass(frozen=True)
class Config:
    backend: str
    nodes: int
    run_records: bool = True

    @property
    def key(self) -> str:
        return f"{self.backend}/{self.nodes}/{'records' if self.run_records else 'no-records'}"

    @property
    def label(self) -> str:
        records = "" if self.run_records else ", no run records"
        return f"{self.backend}, {self.nodes} node{'s' if self.nodes > 1 else ''}{records}"


class MeasurementError(Exception):
    """A measurement that did not complete (nodes died, tasks never ran, a timeout)."""


# --- one measurement ---------------------------------------------------------------------------


def node_store_config(backend: str, spec: Any) -> dict[str, Any]:
    """The store configuration a node gets, as JSON-able plugin options."""
    if backend == "redis":
        return {
            "type": "redis",
            "url": f"redis://{spec.redis_host}:{spec.redis_port}/{spec.redis_db}",
            "key_prefix": spec.key_prefix,
        }
    return {
        "type": "sqlalchemy",
        "database": spec.engine.url.render_as_string(hide_password=False),
        "tablename": spec.table,
    }


def make_store(config: dict[str, Any]) -> Any:
    """The driver's own store instance on the nodes' location: it adds the tasks and reads the
    run records. No notifications: the nodes start after the tasks are in."""
    options = {k: v for k, v in config.items() if k != "type"}
    if config["type"] == "redis":
        from asyncz.plugins.stores.redis import RedisStore

        store: Any = RedisStore(notify=False, **options)
    else:
        from asyncz.plugins.stores.sqlalchemy.store import SQLAlchemyStore

        store = SQLAlchemyStore(notify=False, **options)
    store.start(None, "default")
    return store


def make_tasks(n: int, due: datetime) -> list[Any]:
    from asyncz.tasks import Task
    from asyncz.triggers import DateTrigger

    return [
        Task(
            id=f"bench-{i:06d}",
            fn=NOOP,
            trigger=DateTrigger(run_at=due, timezone="UTC"),
            next_run_time=due,
            mistrigger_grace_time=None,  # a late fire still runs: lateness is what we measure
            coalesce=False,
        )
        for i in range(n)
    ]


def count_run_records(store: Any, n: int) -> dict[str, int]:
    """Run records by status (every task's, up to twice the number of tasks)."""
    return dict(Counter(run.status for run in store.get_runs(None, limit=2 * n + 10)))


class Node:
    """One node process and its files."""

    def __init__(self, index: int, workdir: Path, command: list[str]) -> None:
        self.index = index
        self.progress_path = workdir / f"node{index}.progress.json"
        self.result_path = workdir / f"node{index}.result.json"
        self.stderr_path = workdir / f"node{index}.stderr"
        self._stderr = open(self.stderr_path, "w")  # noqa: SIM115 - closed in stop()
        cmd = [*command, "--progress", str(self.progress_path), "--result", str(self.result_path)]
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            cwd=REPO_ROOT,
            start_new_session=True,
        )

    def progress(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.progress_path.read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    def stderr_tail(self, lines: int = 3) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signum)

    def stop(self, timeout: float) -> dict[str, Any] | None:
        """Ask the node to shut down; its result, or None if it did not write one."""
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait()
        self._stderr.close()
        try:
            return json.loads(self.result_path.read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None


def node_command(python: str, snapshot: Path | None) -> list[str]:
    """Starts `benchmarks.cluster_node` with the snapshot of `asyncz` (if any) first on the path
    and this checkout's `benchmarks` importable (the tasks reference it)."""
    paths = [str(p) for p in (snapshot, REPO_ROOT) if p is not None]
    boot = (
        "import sys; sys.path[:0] = sys.argv[1].split(':'); del sys.argv[1]; "
        "from benchmarks.cluster_node import main; sys.exit(main(sys.argv[1:]))"
    )
    return [python, "-c", boot, ":".join(paths)]


class Driver:
    def __init__(self, args: argparse.Namespace, snapshot: Path | None) -> None:
        self.args = args
        self.snapshot = snapshot
        self.command = node_command(args.python, snapshot)
        # Seconds from building the tasks until every node is ready, as last seen per node
        # count: the due moment is put that far ahead (with a margin), so no node starts late.
        self.setup_s: dict[int, float] = {}
        self.count = 0

    def measure(self, config: Config, repeat: int) -> dict[str, Any]:
        self.count += 1
        base: dict[str, Any] = {
            "config": config.key,
            "backend": config.backend,
            "nodes": config.nodes,
            "run_records": config.run_records,
            "repeat": repeat,
            "tasks": self.args.tasks,
        }
        if self.args.wait_quiet:
            base["waited_s"] = wait_for_quiet(self.args.wait_quiet)
        base["load_before"] = loadavg()
        busy0, _ = _cpu_seconds()
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self0 = time.process_time()
        t0 = time.perf_counter()
        try:
            result = {**base, "status": "ok", **self._measure(config)}
        except MeasurementError as exc:
            result = {**base, "status": "error", "reason": str(exc)}
        wall = time.perf_counter() - t0
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = (children1.ru_utime - children0.ru_utime) + (children1.ru_stime - children0.ru_stime)
        own += time.process_time() - self0
        busy1, _ = _cpu_seconds()
        result["load_after"] = loadavg()
        result["wall_s"] = wall
        result["own_cpu_s"] = own
        # What other processes (tests, builds, the database servers) used meanwhile, in cores.
        # The servers work for us too, so on PostgreSQL and Redis this includes their share.
        result["other_cores"] = max(0.0, (busy1 - busy0 - own) / wall) if busy1 else None
        return result

    def _measure(self, config: Config) -> dict[str, Any]:
        n = self.args.tasks
        server = SERVER[config.backend]
        if server != "sqlite" and not server_reachable(server):
            raise MeasurementError(f"{config.backend} not reachable at {server_url(server)}")
        tag = f"cl{os.getpid()}_{self.count}"
        with (
            open_backend(server, tag) as spec,
            tempfile.TemporaryDirectory(prefix="asyncz-cluster-") as tmp,
        ):
            workdir = Path(tmp)
            store_config = node_store_config(config.backend, spec)
            store = make_store(store_config)
            try:
                return self._run(config, store, store_config, workdir, n)
            finally:
                store.shutdown()

    def _run(
        self, config: Config, store: Any, store_config: dict[str, Any], workdir: Path, n: int
    ) -> dict[str, Any]:
        t_setup = time.time()
        setup = self.setup_s.get(config.nodes, 2.5 + n / 2500 + config.nodes / 2)
        due_ts = t_setup + setup * 1.3 + 1.5
        due = datetime.fromtimestamp(due_ts, UTC)
        tasks = make_tasks(n, due)
        t_built = time.time()
        store.add_tasks(tasks)
        t_added = time.time()
        del tasks
        command = [*self.command, "--store", json.dumps(store_config), "--due", str(due_ts)]
        if not config.run_records:
            command.append("--no-run-records")
        if self.args.profile:
            command.append("--profile")
        nodes = [Node(i, workdir, command) for i in range(config.nodes)]
        results: list[dict[str, Any] | None] = []
        try:
            ready = self._wait_ready(nodes, due_ts)
            self.setup_s[config.nodes] = max(ready - t_setup, 1.0)
            self._wait_done(nodes, n, due_ts)
        finally:
            # Results even after a failure: they say what ran.
            results = [node.stop(timeout=60 + n / 200) for node in nodes]
        missing_results = [nodes[i] for i, r in enumerate(results) if r is None]
        if missing_results:
            node = missing_results[0]
            raise MeasurementError(
                f"node {node.index} wrote no result (exit {node.proc.returncode}): "
                f"{node.stderr_tail()}"
            )
        done = [r for r in results if r is not None]
        executed = [tuple(run) for r in done for run in r["runs"]]
        ids = Counter(task_id for task_id, _ in executed)
        expected = {f"bench-{i:06d}" for i in range(n)}
        duplicates = sum(c - 1 for c in ids.values() if c > 1)
        missing = len(expected - set(ids))
        unexpected = len(set(ids) - expected)
        last = max(r["last"] for r in done if r["last"] is not None) if executed else None
        first = min(r["first"] for r in done if r["first"] is not None) if executed else None
        records = count_run_records(store, n)
        expected_records = {"succeeded": n} if config.run_records else {}
        checks = {
            "executed": len(executed),
            "duplicates": duplicates,
            "missing": missing,
            "unexpected": unexpected,
            "errors": sum(r["errors"] for r in done),
            "missed": sum(r["missed"] for r in done),
            "run_records": records,
            "per_node": [r["executed"] for r in done],
        }
        origins = sorted({r["asyncz"] for r in done})
        if self.snapshot is not None and any(
            not Path(o).resolve().is_relative_to(self.snapshot) for o in origins
        ):
            raise MeasurementError(f"nodes imported asyncz from {origins}, not the snapshot")
        problems = []
        if duplicates or missing or unexpected:
            problems.append(
                f"{len(executed)} runs for {n} tasks: {duplicates} duplicate(s), "
                f"{missing} missing, {unexpected} unexpected"
            )
        if checks["errors"] or checks["missed"]:
            first_error = next((r["first_error"] for r in done if r["first_error"]), "")
            problems.append(
                f"{checks['errors']} failed and {checks['missed']} missed runs {first_error}"
            )
        if ready > due_ts:
            problems.append(f"the last node was ready {ready - due_ts:.2f} s after the due time")
        if records != expected_records:
            problems.append(f"run records {records}, expected {expected_records}")
        if last is None or first is None:
            raise MeasurementError("; ".join(problems) or "nothing ran")
        out: dict[str, Any] = {
            "fires_per_s": n / (last - due_ts) if last > due_ts else float("nan"),
            "seconds": last - due_ts,
            "first_lag_s": first - due_ts,
            "build_s": t_built - t_setup,
            "add_s": t_added - t_built,
            "ready_margin_s": due_ts - ready,
            "shutdown_s": max(r["shutdown_s"] for r in done),
            "checks": checks,
            "origin": origins,
        }
        if self.args.profile:
            out["profiles"] = [r.get("profile") for r in done]
        if problems:
            out["status"] = "error"
            out["reason"] = "; ".join(problems)
        return out

    def _wait_ready(self, nodes: list[Node], due_ts: float) -> float:
        """Wait until every node started its scheduler; when the last one did."""
        limit = due_ts + 60
        while True:
            progress = [node.progress() for node in nodes]
            if all(p is not None for p in progress):
                return max(p["ready"] for p in progress if p is not None)  # type: ignore[no-any-return]
            self._check_alive(nodes)
            if time.time() > limit:
                raise MeasurementError("nodes did not start within 60 s of the due time")
            time.sleep(0.05)

    def _wait_done(self, nodes: list[Node], n: int, due_ts: float) -> None:
        """Wait until the nodes together executed `n` runs (or fail on a stall)."""
        executed, changed = -1, time.time()
        stall = 60.0 + n / 200
        while True:
            progress = [node.progress() or {} for node in nodes]
            total = sum(p.get("executed", 0) for p in progress)
            total += sum(p.get("errors", 0) + p.get("missed", 0) for p in progress)
            if total >= n:
                return
            now = time.time()
            if total != executed:
                executed, changed = total, now
            if now - max(changed, due_ts) > stall:
                raise MeasurementError(f"only {total} of {n} runs after {stall:.0f} s idle")
            self._check_alive(nodes)
            time.sleep(0.02)

    @staticmethod
    def _check_alive(nodes: list[Node]) -> None:
        for node in nodes:
            code = node.proc.poll()
            if code is not None:
                raise MeasurementError(f"node {node.index} exited {code}: {node.stderr_tail()}")


# --- the plan and the report -----------------------------------------------------------------


def plan(backends: Sequence[str], nodes: Sequence[int]) -> list[list[Config]]:
    """Groups of configurations; a group is measured back to back (an A/B pair)."""
    groups: list[list[Config]] = []
    for backend in backends:
        for count in nodes:
            if count == 1 and backend in RECORD_BACKENDS:
                groups.append([Config(backend, 1, True), Config(backend, 1, False)])
            else:
                groups.append([Config(backend, count)])
    return groups


def order(groups: list[list[Config]], repeat: int) -> list[Config]:
    """Groups rotated by the repeat, each A/B pair's order flipped every other repeat."""
    shift = repeat % len(groups) if groups else 0
    flat: list[Config] = []
    for group in groups[shift:] + groups[:shift]:
        flat.extend(group if repeat % 2 == 0 else list(reversed(group)))
    return flat


def _ok(results: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [r for r in results if r["config"] == key and r["status"] == "ok"]


def _rates(results: list[dict[str, Any]], key: str) -> list[float]:
    return [r["fires_per_s"] for r in _ok(results, key)]


def _cell(values: list[float], digits: int = 0) -> str:
    if not values:
        return DASH
    med = statistics.median(values)
    text = f"{med:,.{digits}f}"
    if len(values) > 1 and min(values) != max(values):
        text += f" ({min(values):,.{digits}f}{DASH}{max(values):,.{digits}f})"
    return text


def _pair_ratios(results: list[dict[str, Any]], a: str, b: str) -> list[float]:
    """Per repeat, a's rate over b's (only repeats where both succeeded)."""
    ra = {r["repeat"]: r["fires_per_s"] for r in _ok(results, a)}
    rb = {r["repeat"]: r["fires_per_s"] for r in _ok(results, b)}
    return [ra[i] / rb[i] for i in sorted(ra.keys() & rb.keys()) if rb[i] > 0]


def render(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    backends, node_counts = meta["backends"], meta["nodes"]
    out = [f"# asyncz cluster benchmark — {meta['started']}", ""]
    out += [
        f"Command: `{meta['command']}`  ",
        f"{meta['tasks']:,} one-off tasks due at one moment, {meta['repeats']} repeat(s) per "
        f"configuration; configurations interleaved. Measured code: {meta['measured']}. "
        f"Wall time {meta['wall_s']:.0f} s.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    out += [f"| {k} | {v} |" for k, v in machine_info().items()]
    out += [
        f"| load average (1, 5, 15 min) at start / end | {meta['load_start']} / "
        f"{meta['load_end']} |",
        "",
    ]
    others = [r["other_cores"] for r in results if r.get("other_cores") is not None]
    if others:
        out += [
            "CPU used by other processes while measuring (from /proc/stat, minus the driver's "
            "and the nodes' own; on PostgreSQL and Redis this includes the server working for "
            f"the nodes): median {statistics.median(others):.2f} cores, max {max(others):.2f} "
            f"of {os.cpu_count()}.",
            "",
        ]
    out += [
        "## Fires per second by number of nodes",
        "",
        "Tasks divided by the seconds from their due moment until the last run ended, on any "
        f"node. Median ({DASH} range) over the repeats. Goal: at least {GOAL_RATE:,.0f}/s at 4 "
        "nodes, and no drop from 1 to 4 nodes.",
        "",
    ]
    header = ["store", *(f"{c} node{'s' if c > 1 else ''}" for c in node_counts)]
    most = max(node_counts)
    if len(node_counts) > 1:
        header.append(f"{most} vs 1 node (per repeat)" if 1 in node_counts else "")
    out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for backend in backends:
        row = [backend]
        for count in node_counts:
            row.append(_cell(_rates(results, Config(backend, count).key)))
        if len(node_counts) > 1 and 1 in node_counts:
            ratios = _pair_ratios(results, Config(backend, most).key, Config(backend, 1).key)
            row.append(_cell(ratios, 2) + TIMES if ratios else DASH)
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    record_backends = [b for b in backends if b in RECORD_BACKENDS]
    if record_backends and 1 in node_counts:
        out += [
            "## The cost of run records (one node)",
            "",
            "The same one-node workload with run records (`fire_tasks`, the default) and "
            "without (`store.fire_tasks = None`: `release_tasks`, no records), measured back to "
            f"back in alternating order. Goal: with records at least {GOAL_RECORDS:.0%} of the "
            "throughput without.",
            "",
            "| store | with run records (fires/s) | without (fires/s) | with / without "
            "(per repeat) |",
            "|---|---|---|---|",
        ]
        for backend in record_backends:
            on, off = Config(backend, 1, True).key, Config(backend, 1, False).key
            ratios = _pair_ratios(results, on, off)
            out.append(
                f"| {backend} | {_cell(_rates(results, on))} | {_cell(_rates(results, off))} "
                f"| {_cell(ratios, 2) if ratios else DASH} |"
            )
        out.append("")
    out += [
        "## Every measurement",
        "",
        "In the order run. *lag*: from the due moment to the first run's end; *margin*: how long "
        "before the due moment the last node was ready; *load*: the 1-minute load average "
        "before → after; *others*: cores used by other processes meanwhile. *checks*: runs "
        "executed (per node), duplicates, missing, and run records by status.",
        "",
        "| # | configuration | repeat | fires/s | seconds | lag (s) | margin (s) | load | "
        "others | checks |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(results, 1):
        config = Config(r["backend"], r["nodes"], r["run_records"])
        load = f"{r['load_before'].split()[0]} → {r['load_after'].split()[0]}"
        other = f"{r['other_cores']:.2f}" if r.get("other_cores") is not None else "?"
        if "checks" in r:
            c = r["checks"]
            records = ", ".join(f"{k} {v:,}" for k, v in sorted(c["run_records"].items()))
            check = (
                f"{c['executed']:,} ({' + '.join(f'{x:,}' for x in c['per_node'])}), "
                f"{c['duplicates']} dup, {c['missing']} missing; records: {records or 'none'}"
            )
        else:
            check = DASH
        if r["status"] != "ok":
            check = f"**{r['status']}**: {r.get('reason', '')[:300]}; {check}"
        rate = f"{r['fires_per_s']:,.0f}" if "fires_per_s" in r else DASH
        secs = f"{r['seconds']:.2f}" if "seconds" in r else DASH
        lag = f"{r['first_lag_s']:.3f}" if "first_lag_s" in r else DASH
        margin = f"{r['ready_margin_s']:.1f}" if "ready_margin_s" in r else DASH
        out.append(
            f"| {i} | {config.label} | {r['repeat'] + 1} | {rate} | {secs} | {lag} | {margin} "
            f"| {load} | {other} | {check.replace('|', '/')} |"
        )
    out.append("")
    profiles = render_profiles(results)
    if profiles:
        out += profiles
    return "\n".join(out)


def render_profiles(results: list[dict[str, Any]], top: int = 25) -> list[str]:
    """With --profile: per configuration, the functions the scheduler's threads spent the most
    wall time in (inclusive), summed over nodes and repeats."""
    by_config: dict[str, dict[str, dict[str, int]]] = {}
    samples: dict[str, dict[str, int]] = {}
    idle: dict[str, dict[str, int]] = {}
    for r in results:
        for profile in r.get("profiles") or []:
            if not profile:
                continue
            for thread, data in profile["threads"].items():
                name = re.sub(r"_\d+$", "", thread)  # a pool's threads as one
                counts = by_config.setdefault(r["config"], {}).setdefault(name, {})
                samples.setdefault(r["config"], {})
                samples[r["config"]][name] = samples[r["config"]].get(name, 0) + data["samples"]
                idle.setdefault(r["config"], {})
                idle[r["config"]][name] = idle[r["config"]].get(name, 0) + data.get("idle", 0)
                for where, count in data["inclusive"]:
                    counts[where] = counts.get(where, 0) + count
    if not by_config:
        return []
    out = [
        "## Where the time goes (sampled stacks, --profile)",
        "",
        "Sampled every 2 ms from the due moment until the driver stopped the node (the "
        "measured window), summed over nodes and repeats. Per thread: how often it was idle "
        "(a loop waiting in its selector, a thread waiting on an event), then the share of "
        "samples in which each function was on the stack (time in it and in what it called, "
        "database round trips included). The sampler itself slows the nodes down a little.",
        "",
    ]
    prefix = str(REPO_ROOT)
    for config, threads in by_config.items():
        out += [f"### {config}", ""]
        for thread, counts in sorted(threads.items(), key=lambda kv: -samples[config][kv[0]]):
            total = samples[config][thread]
            rest = idle[config].get(thread, 0)
            out += [f"Thread `{thread}`: {total:,} samples, {rest / total:.0%} idle", ""]
            for where, count in sorted(counts.items(), key=lambda kv: -kv[1])[:top]:
                where = where.replace(prefix, "<repo>")
                for marker in ("/site-packages/", "/asyncz-bench-checkout-"):
                    if marker in where:
                        where = "…/" + where.split(marker, 1)[1].split("/", 1)[-1]
                out.append(f"- {count / total:6.1%} `{where}`")
            out.append("")
    return out


# --- command line --------------------------------------------------------------------------------


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help=f"comma-separated, from {', '.join(BACKENDS)} (default: all); the run-record "
        f"comparison is made for {' and '.join(RECORD_BACKENDS)} when 1 is among --nodes",
    )
    p.add_argument("--nodes", default="1,2,4", help="node counts, comma-separated (1,2,4)")
    p.add_argument("--tasks", type=int, default=10_000, help="tasks due at once (10,000)")
    p.add_argument("--repeats", type=int, default=3, help="repeats per configuration (3)")
    p.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "benchmarks" / "results",
        help="directory for cluster-<timestamp>.md and .json",
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
        "--profile",
        action="store_true",
        help="sample the nodes' stacks and add where their time went to the report",
    )
    p.add_argument(
        "--no-snapshot",
        action="store_true",
        help="run the working tree's asyncz instead of a copy taken at the start",
    )
    p.add_argument("--python", default=sys.executable, help="interpreter for the nodes (this one)")
    args = p.parse_args(argv)
    args.backends = _list(args.backends)
    unknown = [b for b in args.backends if b not in BACKENDS]
    if unknown:
        p.error(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    try:
        args.nodes = sorted({int(x) for x in _list(args.nodes)})
    except ValueError:
        p.error("--nodes takes integers, e.g. 1,2,4")
    if not args.nodes or args.nodes[0] < 1 or args.tasks < 1 or args.repeats < 1:
        p.error("--nodes, --tasks and --repeats must be >= 1")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def checkout(skip: bool) -> Iterator[tuple[Path | None, str]]:
    """A copy of this checkout's `asyncz`, first on this process's path too (it adds the
    tasks); or the working tree itself."""
    if skip:
        yield None, "the working tree"
        return
    with tempfile.TemporaryDirectory(prefix="asyncz-bench-checkout-") as tmp:
        snapshot = Path(tmp).resolve()
        measured = snapshot_checkout(snapshot)
        if "asyncz" not in sys.modules:
            sys.path.insert(0, str(snapshot))
        try:
            yield snapshot, measured
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(str(snapshot))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    started = datetime.now(UTC)
    t_start = time.perf_counter()
    load_start = loadavg()
    groups = plan(args.backends, args.nodes)
    results: list[dict[str, Any]] = []
    with checkout(args.no_snapshot) as (snapshot, measured):
        driver = Driver(args, snapshot)
        total = sum(len(g) for g in groups) * args.repeats
        for repeat in range(args.repeats):
            for config in order(groups, repeat):
                result = driver.measure(config, repeat)
                results.append(result)
                note = (
                    f"{result['fires_per_s']:,.0f} fires/s in {result['seconds']:.2f} s"
                    if "fires_per_s" in result
                    else ""
                )
                if result["status"] != "ok":
                    note += f" {result['status']}: {result.get('reason', '')[:200]}"
                log(
                    f"[cluster] {len(results)}/{total} {config.label} · repeat {repeat + 1}: "
                    f"{note.strip()} (load {result['load_before']} → {result['load_after']}, "
                    f"others {result['other_cores'] or 0:.2f} cores, {result['wall_s']:.1f} s)"
                )
    meta = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks.cluster "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "backends": args.backends,
        "nodes": args.nodes,
        "tasks": args.tasks,
        "repeats": args.repeats,
        "measured": measured,
        "wall_s": time.perf_counter() - t_start,
        "load_start": load_start,
        "load_end": loadavg(),
    }
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    raw = args.out / f"cluster-{stamp}.json"
    raw.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    text = render(results, meta)
    (args.out / f"cluster-{stamp}.md").write_text(text + "\n")
    print(text)
    log(f"[cluster] wrote {args.out / f'cluster-{stamp}.md'} and {raw.name}")
    return 1 if any(r["status"] != "ok" for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())

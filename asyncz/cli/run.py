"""``asyncz start``: a scheduler run by the command, in the foreground until it is stopped.

On a terminal a live view shows the next runs, recent outcomes with their durations, the tasks
per state and the schedulers on the stores; otherwise each run is one structured log line
(``key=value``; JSON lines with ``--json``). SIGINT and SIGTERM stop it gracefully: it says what
it waits for (runs still going, shutdown tasks) and waits; a second signal exits at once.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from asyncz.cli.session import Options, executor_configs, store_configs, translate
from asyncz.cli.utils import EXIT_USAGE, CliError, jsonable

__all__ = ["Monitor", "start"]

#: seconds between refreshes of the live view
REFRESH = 0.5
#: seconds between looks at a watched tasks file
WATCH_EVERY = 1.0


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Monitor:
    """What the scheduler did, from its events: runs going on, recent outcomes, counts."""

    def __init__(self, keep: int = 12) -> None:
        self.lock = threading.Lock()
        self.running: dict[str, tuple[str, datetime]] = {}
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
        self.counts = {"succeeded": 0, "failed": 0, "missed": 0}
        self.messages: collections.deque[str] = collections.deque(maxlen=5)
        self.printer: Any = None

    def __call__(self, event: Any) -> None:
        from asyncz import events

        code = event.code
        line: dict[str, Any] | None = None
        with self.lock:
            if code == events.TASK_STARTED:
                key = event.run_id or f"{event.task_id}@{event.scheduled_run_time}"
                self.running[key] = (event.task_id, event.started_at or _now())
                line = {"event": "started", "task": event.task_id, "run": event.run_id}
            elif code in (events.TASK_EXECUTED, events.TASK_ERROR, events.TASK_MISSED):
                key = event.run_id or f"{event.task_id}@{event.scheduled_run_time}"
                self.running.pop(key, None)
                outcome = {
                    events.TASK_EXECUTED: "succeeded",
                    events.TASK_ERROR: "failed",
                    events.TASK_MISSED: "missed",
                }[code]
                self.counts[outcome] += 1
                error = None
                if outcome == "failed" and event.exception is not None:
                    text = str(event.exception).strip().splitlines()
                    error = type(event.exception).__name__ + (f": {text[0]}" if text else "")
                line = {
                    "event": outcome,
                    "task": event.task_id,
                    "run": event.run_id,
                    "scheduled": event.scheduled_run_time,
                    "duration": None if event.duration is None else round(event.duration, 6),
                    "error": error,
                }
                self.recent.appendleft({**line, "at": _now()})
        if line is not None and self.printer is not None:
            self.printer(line)

    def note(self, message: str) -> None:
        with self.lock:
            self.messages.appendleft(f"{_now():%H:%M:%S} {message}")
        if self.printer is not None:
            self.printer({"event": "note", "message": message})


def _log_line(json_output: bool) -> Any:
    def emit(fields: dict[str, Any]) -> None:
        data = {"time": _now().isoformat(timespec="milliseconds"), **fields}
        if json_output:
            text = json.dumps(jsonable({k: v for k, v in data.items() if v is not None}))
        else:
            parts = []
            for key, value in data.items():
                if value is None:
                    continue
                value = jsonable(value)
                shown = str(value)
                if not shown or any(c in shown for c in ' "='):
                    shown = json.dumps(shown)
                parts.append(f"{key}={shown}")
            text = " ".join(parts)
        click.echo(text)

    return emit


class _ViewLogHandler(logging.Handler):
    """Scheduler warnings go into the live view instead of over it."""

    def __init__(self, monitor: Monitor, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.monitor = monitor

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.monitor.note(f"{record.levelname.lower()}: {record.getMessage()}")
        except Exception:  # a view must never break the scheduler
            pass


def _render(scheduler: Any, monitor: Monitor, cache: dict[str, Any]) -> Any:
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    now = time.monotonic()
    if now - cache.get("tasks_at", -1e9) > 2.0:
        try:
            cache["infos"] = scheduler.get_task_infos()
        except Exception as exc:  # a store that is down: show it, keep going
            monitor.note(f"cannot list tasks: {exc}")
        cache["tasks_at"] = now
    if now - cache.get("instances_at", -1e9) > 5.0:
        try:
            cache["instances"] = scheduler.get_scheduler_instance_infos()
        except Exception as exc:
            monitor.note(f"cannot list instances: {exc}")
        cache["instances_at"] = now
    infos = cache.get("infos", [])
    info = scheduler.get_scheduler_info()
    states = collections.Counter(str(i.schedule_state.value) for i in infos)
    with monitor.lock:
        running = list(monitor.running.values())
        recent = list(monitor.recent)
        counts = dict(monitor.counts)
        messages = list(monitor.messages)
    header = Text.assemble(
        ("asyncz ", "bold"),
        f"{info.identity}  {info.state_label}  up {info.uptime_seconds or 0:.0f}s  ",
        f"stores {','.join(info.store_aliases)}  (Ctrl-C stops)",
    )
    summary = Text(
        f"tasks: {states.get('scheduled', 0)} scheduled, {states.get('paused', 0)} paused, "
        f"{states.get('pending', 0)} pending    runs: {counts['succeeded']} succeeded, "
        f"{counts['failed']} failed, {counts['missed']} missed, {len(running)} running"
    )
    upcoming = Table(title="Next runs", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("next run", "task", "name", "trigger"):
        upcoming.add_column(column)
    scheduled = [i for i in infos if i.next_run_time is not None]
    scheduled.sort(key=lambda i: i.next_run_time)
    for item in scheduled[:8]:
        upcoming.add_row(
            item.next_run_time.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            item.id,
            item.name or "",
            item.trigger_description or "",
        )
    outcomes = Table(title="Recent runs", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("ended", "task", "outcome", "duration", "error"):
        outcomes.add_column(column)
    for item in recent[:8]:
        style = {"succeeded": "green", "failed": "red", "missed": "yellow"}[item["event"]]
        outcomes.add_row(
            item["at"].astimezone().strftime("%H:%M:%S"),
            item["task"],
            Text(item["event"], style=style),
            "-" if item["duration"] is None else f"{item['duration']:.3f}s",
            item["error"] or "",
        )
    nodes = Table(title="Instances", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("identity", "scope", "state", "host", "pid", "heartbeat"):
        nodes.add_column(column)
    for node in cache.get("instances", ()):
        age = node.heartbeat_age_seconds
        nodes.add_row(
            node.identity,
            node.scope,
            node.state.name.lower(),
            node.host or "",
            str(node.pid or ""),
            "-" if age is None else f"{age:.1f}s ago",
        )
    parts: list[Any] = [header, summary, upcoming, outcomes, nodes]
    if messages:
        parts.append(Text("\n".join(messages), style="yellow"))
    return Group(*parts)


def _build(options: Options, config: str | None) -> tuple[Any, Any, str]:
    """(scheduler, tasks-file spec or None, how it was made)."""
    if options.bootstrap:
        if config:
            raise CliError("give --bootstrap or --config, not both", EXIT_USAGE)
        from asyncz.cli.bootstrap_loader import load_bootstrap

        if options.stores:
            click.echo("asyncz: note: --store is ignored with --bootstrap", err=True)
        return load_bootstrap(options.bootstrap), None, "bootstrap"
    stores = store_configs(options.stores)
    executors = executor_configs(options.executors)
    if config:
        spec = _load_spec(config)
        overrides: dict[str, Any] = {}
        if stores:
            overrides["stores"] = stores
        if executors:
            overrides["executors"] = executors
        with translate(f"the tasks file {config}", store=True):
            return spec.create_scheduler(**overrides), spec, "config"
    from asyncz.schedulers import AsyncIOScheduler

    with translate("the scheduler's configuration"):
        scheduler = AsyncIOScheduler(stores=stores or None, executors=executors or None)
    return scheduler, None, "standalone"


def _load_spec(path: str) -> Any:
    try:
        from asyncz.tasksfile import TasksFileError, load_tasks_file
    except ImportError as exc:  # the tasks file is not part of this build yet
        raise CliError(f"--config is not available: {exc}", EXIT_USAGE) from exc
    try:
        return load_tasks_file(path)
    except TasksFileError as exc:
        raise CliError(str(exc).strip().splitlines()[0], EXIT_USAGE) from exc
    except FileNotFoundError:
        raise CliError(f"--config {path!r}: no such file", EXIT_USAGE) from None


def _report_apply(report: Any, path: str) -> str:
    parts = []
    for key in ("added", "updated", "unchanged", "removed"):
        ids = list(getattr(report, key, ()) or ())
        parts.append(f"{len(ids)} {key}")
    return f"tasks file {path}: " + ", ".join(parts)


def start(
    options: Options,
    *,
    config: str | None,
    standalone: bool,
    watch: bool,
    live: bool | None,
) -> None:
    from asyncz import events

    scheduler, spec, mode = _build(options, config)
    foreground = standalone or watch or config is not None
    monitor = Monitor()
    mask = events.TASK_STARTED | events.TASK_EXECUTED | events.TASK_ERROR | events.TASK_MISSED
    if foreground:
        scheduler.add_listener(monitor, mask)
    was_running = scheduler.running
    if not was_running:
        with translate("the scheduler's stores", store=True):
            scheduler.start()
    try:
        if spec is not None:
            with translate(f"the tasks file {config}"):
                applied = spec.apply(scheduler)
            click.echo(_report_apply(applied, str(config)))
        click.echo(
            "Scheduler started via bootstrap." if mode == "bootstrap" else "Scheduler started."
        )
        if not foreground:
            return
        _foreground(scheduler, monitor, options, config, spec, watch, live)
    finally:
        scheduler.remove_listener(monitor)
        if not was_running and scheduler.running:
            scheduler.shutdown(wait=True)


def _foreground(
    scheduler: Any,
    monitor: Monitor,
    options: Options,
    config: str | None,
    spec: Any,
    watch: bool,
    live: bool | None,
) -> None:
    stop = threading.Event()
    signals: list[int] = []

    first: list[float] = []

    def on_signal(signum: int, _frame: Any) -> None:
        # One signal sent twice at once (timeout(1) signals its child, then its process
        # group) is one request to stop; a second one a moment later means "now".
        if first and time.monotonic() - first[0] < 1.0:
            return
        first.append(time.monotonic())
        signals.append(signum)
        if len(signals) > 1:
            # A second signal: leave now; runs still going are cut short.
            sys.stderr.write("\nasyncz: second signal: exiting without waiting\n")
            sys.stderr.flush()
            os._exit(130 if signum == signal.SIGINT else 143)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    use_live = sys.stdout.isatty() if live is None else live
    watched = Path(config) if (watch and config) else None
    stamp = _stamp(watched)
    next_look = time.monotonic() + WATCH_EVERY
    logger = logging.getLogger("asyncz")
    handler: logging.Handler
    # What shell-command tasks print is logged at INFO by this logger: show it.
    output = logging.getLogger("asyncz.tasksfile.command")
    output_handler: logging.Handler = (
        _ViewLogHandler(monitor, logging.INFO) if use_live else logging.StreamHandler(sys.stdout)
    )
    output_handler.setLevel(logging.INFO)
    output_level = output.level
    output.setLevel(logging.INFO)
    output.addHandler(output_handler)
    output.propagate = False
    try:
        if use_live:
            from rich.console import Console
            from rich.live import Live

            handler = _ViewLogHandler(monitor)
            logger.addHandler(handler)
            logger.propagate = False
            console = Console()
            cache: dict[str, Any] = {}
            with Live(
                _render(scheduler, monitor, cache),
                console=console,
                refresh_per_second=4,
                transient=False,
            ) as view:
                while not stop.wait(REFRESH):
                    if watched is not None and time.monotonic() >= next_look:
                        stamp = _reload(scheduler, monitor, watched, stamp)
                        next_look = time.monotonic() + WATCH_EVERY
                    view.update(_render(scheduler, monitor, cache))
        else:
            handler = logging.StreamHandler(sys.stderr)
            handler.setLevel(logging.DEBUG if options.debug else logging.WARNING)
            logger.addHandler(handler)
            monitor.printer = _log_line(options.json)
            monitor.printer(
                {
                    "event": "running",
                    "scheduler": scheduler.identity,
                    "stores": ",".join(sorted(scheduler.stores)),
                    "tasks": len(scheduler.get_tasks()),
                }
            )
            while not stop.wait(WATCH_EVERY if watched is not None else 3600):
                if watched is not None:
                    stamp = _reload(scheduler, monitor, watched, stamp)
        _stop(scheduler, monitor, signals)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        monitor.printer = None
        output.removeHandler(output_handler)
        output.setLevel(output_level)
        output.propagate = True
        if "handler" in locals():
            logger.removeHandler(handler)
            logger.propagate = True


def _stamp(path: Path | None) -> tuple[float, int] | None:
    if path is None:
        return None
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime, info.st_size)


def _reload(scheduler: Any, monitor: Monitor, path: Path, stamp: Any) -> Any:
    current = _stamp(path)
    if current == stamp or current is None:
        return stamp
    try:
        spec = _load_spec(str(path))
        report = spec.apply(scheduler)
    except CliError as exc:
        monitor.note(f"{path} not applied, the running tasks are kept: {exc.format_message()}")
    except Exception as exc:
        monitor.note(f"{path} not applied, the running tasks are kept: {exc}")
    else:
        monitor.note(_report_apply(report, str(path)))
    return current


def _stop(scheduler: Any, monitor: Monitor, signals: list[int]) -> None:
    name = signal.Signals(signals[0]).name if signals else "stop"
    with monitor.lock:
        running = list(monitor.running.values())
    shutdown_tasks = [
        t.id for t in scheduler.get_tasks() if getattr(t.trigger, "alias", None) == "shutdown"
    ]
    waiting = []
    if running:
        now = _now()
        described = ", ".join(
            f"{task_id} (running {(now - started).total_seconds():.1f}s)"
            for task_id, started in running
        )
        waiting.append(f"{len(running)} running task(s): {described}")
    if shutdown_tasks:
        waiting.append(f"{len(shutdown_tasks)} shutdown task(s): {', '.join(shutdown_tasks)}")
    what = "; ".join(waiting) if waiting else "nothing running"
    click.echo(f"{name}: stopping; waiting for {what} (a second signal exits at once)", err=True)
    began = time.monotonic()
    scheduler.shutdown(wait=True)
    click.echo(f"Scheduler stopped after {time.monotonic() - began:.1f}s.", err=True)

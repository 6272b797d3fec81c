"""The ``asyncz`` command's application: a sayer app (click underneath) with one command each.

Each command is a plain click command (options spelled out, so their parsing is click's and
nothing else's) mounted on the sayer application, which renders the help. The commands are
clients of the public API: they open a scheduler (:mod:`asyncz.cli.session`), call its task and
inspection methods, and print text for people or, with ``--json``, JSON for programs.

``docs/cli.md`` documents every command, option, exit code and JSON shape.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import click
from sayer import Sayer

from asyncz import __version__
from asyncz.cli.session import Options, guarded, open_scheduler, translate
from asyncz.cli.utils import (
    EXIT_FAILURE,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    CliError,
    dump_json,
    jsonable,
    parse_datetime,
    parse_interval,
    parse_json_option,
    table,
)

__all__ = ["asyncz_cli", "task_dict"]

asyncz_cli = Sayer(
    name="asyncz",
    help="Run, inspect and operate asyncz schedulers and the tasks in their stores.",
    no_args_is_help=True,
    add_version_option=True,
    version=__version__,
)

_STATES = ("pending", "scheduled", "paused")
_SORT_KEYS = ("id", "name", "next_run_time", "schedule_state", "executor", "store", "trigger")


# -- shared options ----------------------------------------------------------------------------


def _opt_debug(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--debug", is_flag=True, help="Show the traceback of an error (or set ASYNCZ_DEBUG=1)."
    )(f)


def _opt_json(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "json_output", is_flag=True, help="Print JSON.")(f)


def _opt_stores(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--bootstrap",
        "-b",
        metavar="MODULE:OBJECT",
        help="Use the application's scheduler: a scheduler, a class or object with "
        "get_scheduler(), or a callable returning one.",
    )(f)
    return click.option(
        "--store",
        "-s",
        "stores",
        multiple=True,
        metavar="ALIAS=URL",
        help="A store: memory, sqlite:///tasks.db, postgresql://…, mysql://…, redis://…, "
        "file:///dir (repeatable).",
    )(f)


def _opt_executors(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--executor",
        "-e",
        "executors",
        multiple=True,
        metavar="ALIAS=TYPE[:WORKERS]",
        help="An executor: asyncio, thread:8, process:4, debug (repeatable).",
    )(f)


def _options(
    stores: Sequence[str] = (),
    bootstrap: str | None = None,
    json_output: bool = False,
    debug: bool = False,
    executors: Sequence[str] = (),
) -> Options:
    return Options(stores, executors, bootstrap, json_output, debug)


def _register(command: click.Command) -> click.Command:
    asyncz_cli.add_command(command)
    return command


# -- JSON shapes -------------------------------------------------------------------------------


def task_dict(info: Any, task: Any = None) -> dict[str, Any]:
    """A task snapshot as the commands print it (Asyncz's fields, then ours)."""
    data: dict[str, Any] = {
        "id": info.id,
        "name": info.name,
        "trigger": info.trigger_name,
        "trigger_alias": info.trigger_alias,
        "trigger_description": info.trigger_description,
        "next_run_time": info.next_run_time,
        "state": str(getattr(info.schedule_state, "value", info.schedule_state)),
        "store": info.store,
        "executor": info.executor,
        "callable_name": info.callable_name,
        "callable_reference": info.callable_reference,
        "coalesce": info.coalesce,
        "max_instances": info.max_instances,
        "mistrigger_grace_time": info.mistrigger_grace_time,
        "timeout": info.timeout,
        "on_crash": info.on_crash,
        "pending": info.pending,
        "paused": info.paused,
    }
    if task is not None:
        data["args"] = list(task.args)
        data["kwargs"] = dict(task.kwargs)
    return jsonable(data)  # type: ignore[no-any-return]


def scheduler_dict(info: Any) -> dict[str, Any]:
    """``get_scheduler_info()`` as ``status`` prints it (Asyncz's fields)."""
    return jsonable(  # type: ignore[no-any-return]
        {
            "state": info.state_label,
            "state_code": int(info.state),
            "running": info.running,
            "identity": info.identity,
            "started_at": info.started_at,
            "uptime_seconds": info.uptime_seconds,
            "timezone": info.timezone,
            "stores": list(info.store_aliases),
            "executors": list(info.executor_aliases),
            "task_count": info.task_count,
            "scheduled_task_count": info.scheduled_task_count,
            "paused_task_count": info.paused_task_count,
            "pending_task_count": info.pending_task_count,
            "submitted_task_count": info.submitted_task_count,
            "store_retry_interval": info.store_retry_interval,
            "startup_delay": info.startup_delay,
        }
    )


def instance_dict(info: Any) -> dict[str, Any]:
    return jsonable(  # type: ignore[no-any-return]
        {
            "identity": info.identity,
            "scope": info.scope,
            "state": info.state.name.lower(),
            "state_code": int(info.state),
            "active": info.active,
            "stale": info.stale,
            "started_at": info.started_at,
            "last_seen_at": info.last_seen_at,
            "uptime_seconds": info.uptime_seconds,
            "heartbeat_age_seconds": info.heartbeat_age_seconds,
            "stale_after_seconds": info.stale_after_seconds,
            "host": info.host,
            "pid": info.pid,
            "asyncz_version": info.asyncz_version,
            "stores": list(info.stores),
            "executors": list(info.executors),
            "task_count": info.task_count,
        }
    )


def run_dict(record: Any) -> dict[str, Any]:
    return jsonable(record.to_dict())  # type: ignore[no-any-return]


def _when(moment: Any) -> str:
    if moment is None:
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return str(moment.isoformat(sep=" ", timespec="seconds"))


def _find(scheduler: Any, task_id: str) -> Any:
    task = scheduler.get_task(task_id)
    if task is None:
        stores = ", ".join(sorted(scheduler.stores)) or "none"
        raise CliError(f"no task with the id {task_id!r} (stores: {stores})", EXIT_NOT_FOUND)
    return task


# -- version and plugins -----------------------------------------------------------------------


@click.command("version")
@_opt_json
def version_command(json_output: bool) -> None:
    """Print the installed asyncz version."""
    import asyncz

    if json_output:
        dump_json({"version": asyncz.__version__})
    else:
        click.echo(f"asyncz {asyncz.__version__}")


_register(version_command)


@click.command("plugins")
@_opt_json
@_opt_debug
@guarded
def plugins_command(json_output: bool, debug: bool) -> None:
    """List plugin aliases, who provides them, and the ones missing a dependency."""
    from asyncz.cli.plugins import plugins_report, print_plugins

    report = plugins_report()
    if json_output:
        dump_json(report)
    else:
        print_plugins(report)


_register(plugins_command)


# -- listing and inspection --------------------------------------------------------------------


@click.command("list")
@_opt_stores
@click.option("--state", type=click.Choice(_STATES), help="Only tasks in this state.")
@click.option("--executor", "executor_alias", metavar="ALIAS", help="Only tasks of this executor.")
@click.option("--trigger", metavar="ALIAS", help="Only tasks with this trigger (alias or class).")
@click.option(
    "--query",
    "-q",
    metavar="TEXT",
    help="Only tasks whose id, name, callable or trigger contains TEXT.",
)
@click.option(
    "--sort-by", type=click.Choice(_SORT_KEYS), default="next_run_time", show_default=True
)
@click.option("--desc", is_flag=True, help="Sort in descending order.")
@_opt_json
@_opt_debug
@guarded
def list_command(
    stores: Sequence[str],
    bootstrap: str | None,
    state: str | None,
    executor_alias: str | None,
    trigger: str | None,
    query: str | None,
    sort_by: str,
    desc: bool,
    json_output: bool,
    debug: bool,
) -> None:
    """List the tasks in the stores."""
    options = _options(stores, bootstrap, json_output, debug)
    with open_scheduler(options) as scheduler:
        infos = scheduler.get_task_infos(
            schedule_state=state,
            executor=executor_alias,
            q=query,
            sort_by=sort_by,
            descending=desc,
        )
    if trigger:
        wanted = trigger.lower()
        infos = [
            info
            for info in infos
            if wanted in ((info.trigger_alias or "").lower(), (info.trigger_name or "").lower())
        ]
    if json_output:
        dump_json([task_dict(info) for info in infos])
        return
    if not infos:
        click.echo("No tasks.")
        return
    rows: list[list[Any]] = [["ID", "NAME", "STATE", "TRIGGER", "NEXT RUN", "STORE"]]
    for info in infos:
        rows.append(
            [
                info.id,
                info.name or "",
                task_dict(info)["state"],
                f"{info.trigger_name} {info.trigger_description or ''}".strip(),
                _when(info.next_run_time),
                info.store or "",
            ]
        )
    click.echo(table(rows))


_register(list_command)


@click.command("inspect")
@click.argument("task_id")
@_opt_stores
@click.option(
    "--count",
    "-n",
    type=click.IntRange(1, 50),
    default=5,
    show_default=True,
    help="Upcoming run times to show.",
)
@click.option(
    "--runs",
    "runs_limit",
    type=click.IntRange(1, 1000),
    default=10,
    show_default=True,
    help="Recent runs to show (from the store's run records).",
)
@_opt_json
@_opt_debug
@guarded
def inspect_command(
    task_id: str,
    stores: Sequence[str],
    bootstrap: str | None,
    count: int,
    runs_limit: int,
    json_output: bool,
    debug: bool,
) -> None:
    """One task: its fields, upcoming run times and recent runs."""
    options = _options(stores, bootstrap, json_output, debug)
    with open_scheduler(options) as scheduler:
        task = _find(scheduler, task_id)
        preview = scheduler.preview_task_runs(task_id, count=count)
        runs = scheduler.get_task_runs(task_id, limit=runs_limit)
    payload = {
        "task": task_dict(preview.task, task),
        "requested_count": count,
        "returned_count": len(preview.run_times),
        "exhausted": preview.exhausted,
        "run_times": jsonable(list(preview.run_times)),
        "runs": [run_dict(record) for record in runs],
    }
    if json_output:
        dump_json(payload)
        return
    data = payload["task"]
    for key in (
        "id",
        "name",
        "state",
        "trigger_description",
        "next_run_time",
        "store",
        "executor",
        "callable_reference",
        "args",
        "kwargs",
        "coalesce",
        "max_instances",
        "mistrigger_grace_time",
        "timeout",
        "on_crash",
    ):
        value = data.get(key)
        shown = _when(value) if key == "next_run_time" else value
        click.echo(f"{key.replace('_description', '')}: {shown}")
    click.echo("upcoming:")
    for moment in preview.run_times:
        click.echo(f"  {_when(moment)}")
    if preview.exhausted:
        click.echo("  (no run after these)")
    click.echo("recent runs:" if runs else "recent runs: none recorded")
    if runs:
        rows: list[list[Any]] = [["SCHEDULED", "STATUS", "DURATION", "INSTANCE", "ERROR"]]
        for record in runs:
            rows.append(
                [
                    _when(record.scheduled_at),
                    str(getattr(record.status, "value", record.status)),
                    "-" if record.duration is None else f"{record.duration:.3f}s",
                    record.instance,
                    (record.error or "").splitlines()[0] if record.error else "",
                ]
            )
        click.echo("\n".join(f"  {line}" for line in table(rows).splitlines()))


_register(inspect_command)


@click.command("preview")
@click.argument("task_id")
@_opt_stores
@click.option("--count", "-n", type=click.IntRange(1, 50), default=5, show_default=True)
@_opt_json
@_opt_debug
@guarded
def preview_command(
    task_id: str,
    stores: Sequence[str],
    bootstrap: str | None,
    count: int,
    json_output: bool,
    debug: bool,
) -> None:
    """Upcoming run times of one task (nothing is changed)."""
    options = _options(stores, bootstrap, json_output, debug)
    with open_scheduler(options) as scheduler:
        _find(scheduler, task_id)
        generated = datetime.now(timezone.utc)
        preview = scheduler.preview_task_runs(task_id, count=count, now=generated)
        zone = scheduler.get_scheduler_info().timezone
    payload = {
        "task": task_dict(preview.task),
        "timezone": zone,
        "generated_at": jsonable(generated),
        "requested_count": count,
        "returned_count": len(preview.run_times),
        "exhausted": preview.exhausted,
        "run_times": jsonable(list(preview.run_times)),
    }
    if json_output:
        dump_json(payload)
        return
    click.echo(f"{task_id} ({preview.task.trigger_description}):")
    for moment in preview.run_times:
        click.echo(f"  {_when(moment)}")
    if preview.exhausted:
        click.echo("  (no run after these)")


_register(preview_command)


@click.command("timeline")
@_opt_stores
@click.option(
    "--per-task",
    type=click.IntRange(1, 50),
    default=3,
    show_default=True,
    help="Run times per task.",
)
@click.option(
    "--limit", type=click.IntRange(1, 10_000), default=50, show_default=True, help="Rows at most."
)
@_opt_json
@_opt_debug
@guarded
def timeline_command(
    stores: Sequence[str],
    bootstrap: str | None,
    per_task: int,
    limit: int,
    json_output: bool,
    debug: bool,
) -> None:
    """Upcoming run times of every task, in time order (nothing is changed)."""
    options = _options(stores, bootstrap, json_output, debug)
    rows: list[tuple[datetime, Any]] = []
    exhausted = 0
    with open_scheduler(options) as scheduler:
        generated = datetime.now(timezone.utc)
        zone = scheduler.get_scheduler_info().timezone
        infos = scheduler.get_task_infos()
        for info in infos:
            preview = scheduler.preview_task_runs(info.id, count=per_task, now=generated)
            if preview is None:  # removed meanwhile
                continue
            exhausted += preview.exhausted
            rows.extend((moment, preview.task) for moment in preview.run_times)
    rows.sort(key=lambda row: (row[0], row[1].id))
    shown = rows[:limit]
    payload = {
        "timezone": zone,
        "generated_at": jsonable(generated),
        "requested_per_task": per_task,
        "limit": limit,
        "task_count": len(infos),
        "total_count": len(rows),
        "returned_count": len(shown),
        "exhausted_task_count": exhausted,
        "rows": [{"run_time": jsonable(moment), "task": task_dict(info)} for moment, info in shown],
    }
    if json_output:
        dump_json(payload)
        return
    if not shown:
        click.echo("No upcoming runs.")
        return
    lines: list[list[Any]] = [["RUN TIME", "TASK", "NAME", "TRIGGER"]]
    for moment, info in shown:
        lines.append([_when(moment), info.id, info.name or "", info.trigger_description])
    click.echo(table(lines))
    if len(rows) > len(shown):
        click.echo(f"({len(rows) - len(shown)} more; raise --limit)")


_register(timeline_command)


@click.command("status")
@_opt_stores
@_opt_executors
@_opt_json
@_opt_debug
@guarded
def status_command(
    stores: Sequence[str],
    bootstrap: str | None,
    executors: Sequence[str],
    json_output: bool,
    debug: bool,
) -> None:
    """The scheduler's state, configuration and task counts."""
    options = _options(stores, bootstrap, json_output, debug, executors)
    with open_scheduler(options, running=True) as scheduler:
        payload = scheduler_dict(scheduler.get_scheduler_info())
        others = scheduler.get_scheduler_instance_infos()[1:]
    payload["other_instances"] = len(others)
    if json_output:
        dump_json(payload)
        return
    click.echo(
        f"identity={payload['identity']} state={payload['state']} "
        f"running={payload['running']} timezone={payload['timezone']}"
    )
    click.echo(
        f"tasks={payload['task_count']} scheduled={payload['scheduled_task_count']} "
        f"paused={payload['paused_task_count']} pending={payload['pending_task_count']}"
    )
    click.echo(f"stores={','.join(payload['stores'])} executors={','.join(payload['executors'])}")
    if others:
        click.echo(f"other schedulers on these stores: {len(others)} (see asyncz instances)")


_register(status_command)


@click.command("instances")
@_opt_stores
@_opt_executors
@_opt_json
@_opt_debug
@guarded
def instances_command(
    stores: Sequence[str],
    bootstrap: str | None,
    executors: Sequence[str],
    json_output: bool,
    debug: bool,
) -> None:
    """Schedulers: this command's, and every other one registered in the stores."""
    options = _options(stores, bootstrap, json_output, debug, executors)
    with open_scheduler(options, running=True) as scheduler:
        infos = scheduler.get_scheduler_instance_infos()
    instances = [instance_dict(info) for info in infos]
    scope = "process-local" if len(instances) == 1 else "cluster"
    payload = {"scope": scope, "count": len(instances), "instances": instances}
    if json_output:
        dump_json(payload)
        return
    click.echo(f"scope={scope} count={len(instances)}")
    for item in instances:
        age = item["heartbeat_age_seconds"]
        click.echo(
            f"  identity={item['identity']} scope={item['scope']} state={item['state']} "
            f"active={item['active']} stale={item['stale']} host={item['host']} "
            f"pid={item['pid']} heartbeat_age={'-' if age is None else f'{age:.1f}s'}"
        )


_register(instances_command)


@click.command("doctor")
@_opt_stores
@_opt_executors
@click.option("--strict", is_flag=True, help="Exit with 1 on warnings too.")
@_opt_json
@_opt_debug
@guarded
def doctor_command(
    stores: Sequence[str],
    bootstrap: str | None,
    executors: Sequence[str],
    strict: bool,
    json_output: bool,
    debug: bool,
) -> None:
    """Check plugins, stores and the scheduler; list tasks that cannot be restored."""
    from asyncz.cli.doctor import diagnose, print_diagnosis

    options = _options(stores, bootstrap, json_output, debug, executors)
    report = diagnose(options)
    if json_output:
        dump_json(report)
    else:
        print_diagnosis(report)
    bad = {"failed"} | ({"warning"} if strict else set())
    if report["health"] in bad:
        sys.exit(EXIT_FAILURE)


_register(doctor_command)


# -- changing tasks ----------------------------------------------------------------------------


def _trigger_from(cron: str | None, interval: str | None, at: str | None, zone: str | None) -> Any:
    given = [
        name
        for name, value in (("--cron", cron), ("--interval", interval), ("--at", at))
        if value is not None
    ]
    if len(given) > 1:
        raise CliError(
            f"give one of --cron, --interval and --at, not {' and '.join(given)}", EXIT_USAGE
        )
    if not given:
        return None
    with translate(f"{given[0]} {cron or interval or at!r}"):
        if cron is not None:
            from asyncz.triggers import CronTrigger

            return (
                CronTrigger.from_crontab(cron, timezone=zone)
                if zone
                else CronTrigger.from_crontab(cron)
            )
        if interval is not None:
            from asyncz.triggers import IntervalTrigger

            parts = parse_interval(interval)
            return IntervalTrigger(**parts, timezone=zone) if zone else IntervalTrigger(**parts)
        from asyncz.triggers import DateTrigger

        assert at is not None
        moment = parse_datetime(at)
        return DateTrigger(run_at=moment, timezone=zone) if zone else DateTrigger(run_at=moment)


def _bool(value: str | None, option: str) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise CliError(f"{option} takes true or false, got {value!r}", EXIT_USAGE)


def _trigger_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--timezone",
        "zone",
        metavar="ZONE",
        help="The trigger's time zone (default: the scheduler's).",
    )(f)
    f = click.option("--at", metavar="DATETIME", help="Once, at this ISO 8601 date-time.")(f)
    f = click.option("--interval", metavar="DURATION", help="Every 10s, 5m, 2h, 1d, 1h30m…")(f)
    return click.option("--cron", metavar="EXPR", help='A crontab expression, e.g. "0 2 * * *".')(f)


@click.command("add")
@click.argument("callable_ref", metavar="CALLABLE")
@_opt_stores
@click.option("--id", "task_id", metavar="ID", help="The task's id (default: generated).")
@click.option("--name", help="The task's name (default: the callable's name).")
@_trigger_options
@click.option(
    "--args", "args_json", metavar="JSON", help="Positional arguments, e.g. '[\"a\", 1]'."
)
@click.option(
    "--kwargs", "kwargs_json", metavar="JSON", help="Keyword arguments, e.g. '{\"x\": 1}'."
)
@click.option("--executor", "executor_alias", metavar="ALIAS", help="The executor it runs on.")
@click.option(
    "--target-store",
    metavar="ALIAS",
    help="The store to keep it in (default: the first --store, else 'default').",
)
@click.option("--coalesce", metavar="BOOL", help="Run once for several missed times (true/false).")
@click.option("--max-instances", type=click.IntRange(min=1), help="Concurrent runs at most.")
@click.option(
    "--mistrigger-grace-time",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds late a run may still start (default: no limit).",
)
@click.option("--paused", is_flag=True, help="Add it paused.")
@click.option("--replace", is_flag=True, help="Replace a task with the same id.")
@_opt_json
@_opt_debug
@guarded
def add_command(
    callable_ref: str,
    stores: Sequence[str],
    bootstrap: str | None,
    task_id: str | None,
    name: str | None,
    cron: str | None,
    interval: str | None,
    at: str | None,
    zone: str | None,
    args_json: str | None,
    kwargs_json: str | None,
    executor_alias: str | None,
    target_store: str | None,
    coalesce: str | None,
    max_instances: int | None,
    mistrigger_grace_time: float | None,
    paused: bool,
    replace: bool,
    json_output: bool,
    debug: bool,
) -> None:
    """Add a task running CALLABLE (module:function) on --cron, --interval or --at.

    Without a trigger option it runs once, now (when a scheduler runs the store).
    """
    options = _options(stores, bootstrap, json_output, debug)
    trigger = _trigger_from(cron, interval, at, zone)
    args = parse_json_option(args_json, "--args", list)
    kwargs = parse_json_option(kwargs_json, "--kwargs", dict)
    extra: dict[str, Any] = {}
    for key, value in (
        ("coalesce", _bool(coalesce, "--coalesce")),
        ("max_instances", max_instances),
        ("mistrigger_grace_time", mistrigger_grace_time),
    ):
        if value is not None:
            extra[key] = value
    if paused:
        extra["next_run_time"] = None
    if ":" not in callable_ref:
        raise CliError(
            f"CALLABLE {callable_ref!r} must be module:function, e.g. myapp.tasks:cleanup",
            EXIT_USAGE,
        )
    with open_scheduler(options) as scheduler:
        store = target_store or options.first_store
        if store is not None and store not in scheduler.stores:
            raise CliError(
                f"--target-store {store!r} is not one of the stores: "
                f"{', '.join(sorted(scheduler.stores))}",
                EXIT_USAGE,
            )
        _stand_in_executor(scheduler, options, executor_alias)
        with translate(f"the task {callable_ref!r}"):
            task = scheduler.add_task(
                callable_ref,
                trigger,
                args=args,
                kwargs=kwargs,
                id=task_id,
                name=name,
                store=store,
                executor=executor_alias,
                replace_existing=replace,
                **extra,
            )
        stored = scheduler.get_task(task.id)
        info = (stored or task).snapshot()
    if json_output:
        dump_json({"id": task.id, "task": task_dict(info, stored or task)})
        return
    click.echo(
        f"Added job {task.id} ({info.name}, {info.trigger_description}, "
        f"next run {_when(info.next_run_time)}, store {info.store})"
    )


_register(add_command)


def _stand_in_executor(scheduler: Any, options: Options, alias: str | None) -> None:
    """A standalone command's scheduler does not know the service's executors: let a task
    name one it lacks (an asyncio executor stands in; the command never runs the task)."""
    if alias and not options.bootstrap and alias not in scheduler.executors:
        scheduler.add_executor("asyncio", alias)


_UPDATE_FIELDS = (
    "name",
    "callable",
    "args",
    "kwargs",
    "executor",
    "coalesce",
    "max_instances",
    "mistrigger_grace_time",
    "trigger",
)


def _fields(task: Any) -> dict[str, Any]:
    return {
        "name": task.name,
        "callable": task.fn_reference,
        "args": jsonable(list(task.args)),
        "kwargs": jsonable(dict(task.kwargs)),
        "executor": task.executor,
        "coalesce": task.coalesce,
        "max_instances": task.max_instances,
        "mistrigger_grace_time": task.mistrigger_grace_time,
        "trigger": str(task.trigger),
    }


@click.command("update")
@click.argument("task_id")
@_opt_stores
@click.option("--name", help="A new name.")
@click.option("--callable", "callable_ref", metavar="MODULE:FUNCTION", help="A new callable.")
@click.option("--args", "args_json", metavar="JSON", help="New positional arguments (JSON array).")
@click.option(
    "--kwargs", "kwargs_json", metavar="JSON", help="New keyword arguments (JSON object)."
)
@click.option("--executor", "executor_alias", metavar="ALIAS", help="A new executor alias.")
@click.option("--coalesce", metavar="BOOL", help="true or false.")
@click.option("--max-instances", type=click.IntRange(min=1))
@click.option("--mistrigger-grace-time", type=click.FloatRange(min=0, min_open=True))
@click.option("--clear-mistrigger-grace-time", is_flag=True, help="No lateness limit.")
@_trigger_options
@click.option("--dry-run", is_flag=True, help="Show the diff, change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Apply without asking.")
@_opt_json
@_opt_debug
@guarded
def update_command(
    task_id: str,
    stores: Sequence[str],
    bootstrap: str | None,
    name: str | None,
    callable_ref: str | None,
    args_json: str | None,
    kwargs_json: str | None,
    executor_alias: str | None,
    coalesce: str | None,
    max_instances: int | None,
    mistrigger_grace_time: float | None,
    clear_mistrigger_grace_time: bool,
    cron: str | None,
    interval: str | None,
    at: str | None,
    zone: str | None,
    dry_run: bool,
    yes: bool,
    json_output: bool,
    debug: bool,
) -> None:
    """Change a task's fields (and trigger); shows the diff first."""
    options = _options(stores, bootstrap, json_output, debug)
    if mistrigger_grace_time is not None and clear_mistrigger_grace_time:
        raise CliError(
            "give --mistrigger-grace-time or --clear-mistrigger-grace-time, not both", EXIT_USAGE
        )
    trigger = _trigger_from(cron, interval, at, zone)
    changes: dict[str, Any] = {}
    for key, value in (
        ("name", name),
        ("fn", callable_ref),
        ("args", parse_json_option(args_json, "--args", list)),
        ("kwargs", parse_json_option(kwargs_json, "--kwargs", dict)),
        ("executor", executor_alias),
        ("coalesce", _bool(coalesce, "--coalesce")),
        ("max_instances", max_instances),
        ("mistrigger_grace_time", mistrigger_grace_time),
    ):
        if value is not None:
            changes[key] = value
    if clear_mistrigger_grace_time:
        changes["mistrigger_grace_time"] = None
    with open_scheduler(options) as scheduler:
        task = _find(scheduler, task_id)
        _stand_in_executor(scheduler, options, executor_alias)
        before = _fields(task)
        after = dict(before)
        for key, value in changes.items():
            after["callable" if key == "fn" else key] = jsonable(value)
        if trigger is not None:
            after["trigger"] = str(trigger)
        diff = {
            key: {"before": before[key], "after": after[key]}
            for key in _UPDATE_FIELDS
            if before[key] != after[key]
        }
        applied = False
        result: Any = None
        if diff and not dry_run:
            if not yes:
                if not sys.stdin.isatty():
                    _print_diff(task_id, diff)
                    raise CliError(
                        "not applied: pass --yes to apply without a prompt (or --dry-run)",
                        EXIT_USAGE,
                    )
                _print_diff(task_id, diff)
                if not click.confirm("Apply?", default=False):
                    raise CliError("not applied", EXIT_FAILURE)
            with translate("the update"):
                if changes:
                    scheduler.update_task(task_id, **changes)
                if trigger is not None:
                    scheduler.reschedule_task(task_id, trigger=trigger)
            applied = True
            result = _find(scheduler, task_id)
            store = result.store_alias
        else:
            store = task.store_alias
    payload: dict[str, Any] = {
        "id": task_id,
        "store": store,
        "dry_run": dry_run,
        "applied": applied,
        "changed": bool(diff),
        "diff": diff,
    }
    if result is not None:
        payload["after"] = task_dict(result.snapshot(), result)
    if json_output:
        dump_json(payload)
        return
    if not diff:
        click.echo(f"Nothing to change in job {task_id}.")
        return
    if yes or dry_run:
        _print_diff(task_id, diff)
    click.echo(f"Updated job {task_id}" if applied else f"Dry run: job {task_id} not changed")


def _print_diff(task_id: str, diff: dict[str, Any]) -> None:
    click.echo(f"job {task_id}:")
    for key, change in diff.items():
        click.echo(f"  {key}: {change['before']!r} -> {change['after']!r}")


_register(update_command)


@click.command("run")
@click.argument("task_id")
@_opt_stores
@_opt_executors
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait for the run to end and report its outcome.",
)
@_opt_json
@_opt_debug
@guarded
def run_command(
    task_id: str,
    stores: Sequence[str],
    bootstrap: str | None,
    executors: Sequence[str],
    wait: bool,
    json_output: bool,
    debug: bool,
) -> None:
    """Run a task now, in this process (its schedule is not moved)."""
    import threading

    from asyncz import events

    options = _options(stores, bootstrap, json_output, debug, executors)
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def listen(event: Any) -> None:
        if getattr(event, "task_id", None) == task_id and event.code != events.TASK_STARTED:
            outcome["event"] = event
            done.set()

    with open_scheduler(options) as scheduler:
        executor = _find(scheduler, task_id).executor
        if executor not in scheduler.executors:
            raise CliError(
                f"job {task_id} runs on the executor {executor!r}, which this command does not "
                f"have: add --executor {executor}=asyncio (or thread:N, process:N)",
                EXIT_USAGE,
            )
        scheduler.add_listener(listen, events.TASK_EXECUTED | events.TASK_ERROR)
        try:
            with translate(f"running job {task_id!r}"):
                remaining = scheduler.run_task(task_id)
            if not json_output:
                click.echo(f"Triggered job {task_id}")
            if wait:
                done.wait()
        finally:
            scheduler.remove_listener(listen)
        next_run = remaining.next_run_time if remaining is not None else None
    event = outcome.get("event")
    failed = event is not None and event.code == events.TASK_ERROR
    payload = {
        "id": task_id,
        "triggered": True,
        "outcome": None if event is None else ("failed" if failed else "succeeded"),
        "duration": None if event is None else event.duration,
        "error": _first(event.exception) if failed and event is not None else None,
        "next_run_time": jsonable(next_run),
        "removed": remaining is None,
    }
    if json_output:
        dump_json(payload)
    elif event is not None:
        took = "" if event.duration is None else f" in {event.duration:.3f}s"
        if failed:
            click.echo(f"Job {task_id} failed{took}: {payload['error']}", err=True)
        else:
            click.echo(f"Job {task_id} succeeded{took}")
    if failed:
        sys.exit(EXIT_FAILURE)


def _first(exc: Any) -> str:
    if exc is None:
        return "error"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


_register(run_command)


def _simple(name: str, verb: str, doc: str) -> click.Command:
    @click.command(name, help=doc)
    @click.argument("task_id")
    @_opt_stores
    @_opt_json
    @_opt_debug
    @guarded
    def command(
        task_id: str,
        stores: Sequence[str],
        bootstrap: str | None,
        json_output: bool,
        debug: bool,
    ) -> None:
        options = _options(stores, bootstrap, json_output, debug)
        with open_scheduler(options) as scheduler:
            _find(scheduler, task_id)
            if name == "pause":
                task = scheduler.pause_task(task_id)
            elif name == "resume":
                task = scheduler.resume_task(task_id)
            else:
                scheduler.delete_task(task_id)
                task = None
        if json_output:
            dump_json(
                {
                    "id": task_id,
                    "action": name,
                    "removed": task is None,
                    "state": None if task is None else task_dict(task.snapshot())["state"],
                    "next_run_time": None if task is None else jsonable(task.next_run_time),
                }
            )
            return
        if task is None:
            click.echo(f"{verb} job {task_id}")
        else:
            click.echo(f"{verb} job {task_id} (next run {_when(task.next_run_time)})")

    return command


pause_command = _register(_simple("pause", "Paused", "Pause a task (it keeps its place)."))
resume_command = _register(
    _simple("resume", "Resumed", "Resume a paused task (its next run time from now).")
)
remove_command = _register(_simple("remove", "Removed", "Remove a task from its store."))


# -- start -------------------------------------------------------------------------------------


@click.command("start")
@_opt_stores
@_opt_executors
@click.option(
    "--config",
    "-c",
    "config",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="A tasks file (TOML): stores, executors, defaults and tasks.",
)
@click.option("--standalone", is_flag=True, help="Run in the foreground until stopped.")
@click.option("--watch", is_flag=True, help="Run until stopped; re-read --config when it changes.")
@click.option(
    "--live/--no-live", default=None, help="The live terminal view (default: on a terminal)."
)
@_opt_json
@_opt_debug
@guarded
def start_command(
    stores: Sequence[str],
    bootstrap: str | None,
    executors: Sequence[str],
    config: str | None,
    standalone: bool,
    watch: bool,
    live: bool | None,
    json_output: bool,
    debug: bool,
) -> None:
    """Start a scheduler (in the foreground with --standalone, --watch or --config).

    In the foreground it runs until SIGINT or SIGTERM; otherwise it starts, reports and stops.
    """
    from asyncz.cli.run import start

    options = _options(stores, bootstrap, json_output, debug, executors)
    start(options, config=config, standalone=standalone, watch=watch, live=live)


_register(start_command)

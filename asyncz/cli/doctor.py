"""``asyncz doctor``: readiness checks on a scheduler over the given stores.

Asyncz's five checks (``scheduler_running``, ``stores_registered``, ``executors_registered``,
``task_inventory``, ``lifecycle_clock``), each ``ok``, ``warning`` or ``failed``; the
``task_inventory`` check fails when a store holds tasks it cannot restore (quarantined: left in
the store, never deleted, listed with the reason). Plugins that failed to load are a warning.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import click

from asyncz.cli.session import Options, open_scheduler, store_configs
from asyncz.cli.utils import describe_store

__all__ = ["diagnose", "print_diagnosis"]

_RANK = {"ok": 0, "warning": 1, "failed": 2}


def _check(name: str, status: str, message: str, **details: Any) -> dict[str, Any]:
    return {"name": name, "status": status, "message": message, **details}


def diagnose(options: Options) -> dict[str, Any]:
    from asyncz.cli.app import scheduler_dict
    from asyncz.core.plugins import default_registry

    registry = default_registry()
    registry.providers()  # discover, so that failures are known
    described = {alias: describe_store(c) for alias, c in store_configs(options.stores).items()}
    checks: list[dict[str, Any]] = []
    stores: list[dict[str, Any]] = []
    with open_scheduler(options, running=True) as scheduler:
        info = scheduler.get_scheduler_info()
        quarantined_total = 0
        for alias, store in sorted(scheduler.stores.items()):
            tasks = store.get_all_tasks()
            check = getattr(store, "get_quarantined", None)
            quarantined = check() if check is not None else {}
            quarantined_total += len(quarantined)
            stores.append(
                {
                    "alias": alias,
                    "type": getattr(store, "alias", None) or type(store).__name__,
                    "url": described.get(alias, "memory" if alias == "default" else None),
                    "tasks": len(tasks),
                    "paused": sum(task.next_run_time is None for task in tasks),
                    "quarantined": quarantined,
                }
            )
    state = info.state_label
    if info.running:
        checks.append(
            _check(
                "scheduler_running",
                "ok",
                f"the scheduler started ({state})"
                + (
                    "; left paused: tasks are due within seconds and a command never runs them"
                    if state == "paused"
                    else ""
                ),
            )
        )
    else:
        checks.append(_check("scheduler_running", "failed", f"the scheduler is {state}"))
    checks.append(
        _check(
            "stores_registered",
            "ok" if info.store_aliases else "failed",
            f"{len(info.store_aliases)} store(s): {', '.join(info.store_aliases)}",
        )
    )
    checks.append(
        _check(
            "executors_registered",
            "ok" if info.executor_aliases else "failed",
            f"{len(info.executor_aliases)} executor(s): {', '.join(info.executor_aliases)}",
        )
    )
    checks.append(
        _check(
            "task_inventory",
            "failed" if quarantined_total else "ok",
            f"{info.task_count} task(s): {info.scheduled_task_count} scheduled, "
            f"{info.paused_task_count} paused, {info.pending_task_count} pending"
            + (
                f"; {quarantined_total} cannot be restored (left in their store)"
                if quarantined_total
                else ""
            ),
            quarantined=quarantined_total,
        )
    )
    started = info.started_at
    now = datetime.now(timezone.utc)
    clock_ok = started is not None and started <= now and (info.uptime_seconds or 0) >= 0
    checks.append(
        _check(
            "lifecycle_clock",
            "ok" if clock_ok else ("warning" if started is None else "failed"),
            f"started at {started.isoformat() if started else '-'}, "
            f"uptime {info.uptime_seconds or 0:.3f}s",
        )
    )
    failures = [str(f) for f in registry.failures]
    health = max((c["status"] for c in checks), key=_RANK.__getitem__)
    if failures and health == "ok":
        health = "warning"
    return {
        "health": health,
        "ready": health != "failed" and info.running,
        "scheduler": scheduler_dict(info),
        "checks": checks,
        "stores": stores,
        "plugin_failures": failures,
    }


def print_diagnosis(report: dict[str, Any]) -> None:
    click.echo(f"health={report['health']} ready={report['ready']}")
    for check in report["checks"]:
        click.echo(f"  {check['status']:<8} {check['name']}: {check['message']}")
    for failure in report["plugin_failures"]:
        click.echo(f"  warning  plugin failed to load: {failure}")
    for entry in report["stores"]:
        where = f" ({entry['url']})" if entry["url"] else ""
        click.echo(
            f"store {entry['alias']}{where}: {entry['tasks']} task(s), {entry['paused']} paused"
        )
        for task_id, reason in sorted(entry["quarantined"].items()):
            click.echo(f"  quarantined {task_id!r}: {reason}")
    problems = sum(c["status"] == "failed" for c in report["checks"])
    click.echo(
        "no problems found"
        if report["health"] == "ok"
        else f"health {report['health']}" + (f": {problems} check(s) failed" if problems else "")
    )

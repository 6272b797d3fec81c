"""Applying a tasks file to a running scheduler: its stored tasks become what the file says.

Every task is found by id and compared field by field with what the file describes:

- not stored: added (scheduled from now, or paused with ``paused = true``); a one-off ``date``
  task whose time has passed, or any task whose trigger has no time left, is not added
  (reported as expired: it ran, or would never run);
- stored and the same: left alone, nothing written (so a restart, or a second scheduler applying
  the same file, changes nothing);
- stored with other fields changed (callable, arguments, executor, run policy): those fields are
  written, the next run time and any lease are not touched;
- stored with another trigger: the trigger is written with a next run time computed from now;
- stored in another store than the file names: moved (deleted there, added here);
- stored but unreadable (quarantined, e.g. its old callable is gone): replaced by the file's.

Triggers are compared by their state, leaving out what a trigger takes from the clock when the
file does not give it (an interval's start, a one-off task's "now"), so an unchanged file
compares equal however much later it is applied.

Tasks the file does not list are removed only from the stores it owns (``[asyncz] owns_tasks``).

Not here: reading the file (:mod:`asyncz.tasksfile._spec`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from asyncz.core.converters import now as current_time
from asyncz.core.errors import ConflictIdError, SchedulerNotRunningError, TaskLookupError
from asyncz.core.task import Task
from asyncz.tasksfile._spec import TasksFileError, TriggerSpec, _message

if TYPE_CHECKING:
    from asyncz.tasksfile._spec import TasksFile, TaskSpec

__all__ = ["ApplyReport", "apply"]

logger = logging.getLogger("asyncz.tasksfile")

#: Fields compared between the stored task and the file's (besides fn, trigger and pause).
_COMPARED = (
    "name",
    "args",
    "kwargs",
    "executor",
    "coalesce",
    "max_instances",
    "mistrigger_grace_time",
    "timeout",
    "on_crash",
)
#: State keys a built-in trigger fills from the clock when an option is not given: they differ
#: between two builds of the same file and are left out of the comparison.
_FROM_CLOCK: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "interval": {"start_at": ("start_us",)},
    "date": {"run_at": ("run_at",)},
    "calendar_interval": {"start_at": ("start_at",)},
}


@attrs.frozen(kw_only=True)
class ApplyReport:
    """What :meth:`TasksFile.apply` did, as lists of task ids.

    :var added: tasks that were not stored
    :var updated: stored tasks changed to match the file
    :var unchanged: stored tasks that already matched (nothing written)
    :var removed: tasks removed: not in the file, from a store the file owns; or whose new
        trigger has no run time left
    :var expired: tasks of the file not added because their trigger has no time left (a
        one-off ``date`` task whose time has passed)
    """

    added: list[str] = attrs.field(factory=list)
    updated: list[str] = attrs.field(factory=list)
    unchanged: list[str] = attrs.field(factory=list)
    removed: list[str] = attrs.field(factory=list)
    expired: list[str] = attrs.field(factory=list)

    def __str__(self) -> str:
        parts = [
            f"{len(ids)} {label}"
            for label, ids in (
                ("added", self.added),
                ("updated", self.updated),
                ("unchanged", self.unchanged),
                ("removed", self.removed),
                ("expired", self.expired),
            )
            if ids or label in ("added", "updated", "unchanged")
        ]
        return ", ".join(parts)


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively: a state read back from a JSON record compares equal."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _comparable(alias: str, state: Mapping[str, Any], spec: TriggerSpec) -> dict[str, Any]:
    result = dict(_plain(state))
    for option, keys in _FROM_CLOCK.get(alias, {}).items():
        if option not in spec.given:
            for key in keys:
                result.pop(key, None)
    children = spec.options.get("triggers")
    nested = result.get("triggers")
    if isinstance(children, list) and isinstance(nested, list) and len(children) == len(nested):
        result["triggers"] = [
            [pair[0], _comparable(pair[0], pair[1], child)]
            if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], Mapping)
            else pair
            for pair, child in zip(nested, children, strict=True)
        ]
    return result


def _same_trigger(stored: Any, wanted: Any, spec: TriggerSpec) -> bool:
    alias = getattr(wanted, "alias", None)
    if getattr(stored, "alias", None) != alias or type(stored) is not type(wanted):
        return False
    try:
        left, right = stored.__getstate__(), wanted.__getstate__()
    except (AttributeError, TypeError):  # pragma: no cover - a trigger without plain state
        return False
    return _comparable(alias or "", left, spec) == _comparable(alias or "", right, spec)


def _wanted(spec: TasksFile, task: TaskSpec, scheduler: Any) -> Task:
    """The task the file describes, as ``scheduler.add_task`` would make it."""
    try:
        trigger = task.trigger.build(scheduler.plugins, scheduler.timezone)
    except (TypeError, ValueError, LookupError) as exc:
        raise TasksFileError(spec.path, task.trigger.key, _message(exc)) from exc
    fields = {**scheduler.task_defaults, **task.options}
    if (
        getattr(trigger, "allow_mistrigger_by_default", False)
        and "mistrigger_grace_time" not in task.options
    ):
        fields["mistrigger_grace_time"] = None
    store = task.store or "default"
    executor = task.executor or "default"
    try:
        scheduler.lookup_store(store)
    except KeyError:
        raise TasksFileError(
            spec.path, f"{task.key}.store", f"the scheduler has no store {store!r}", store
        ) from None
    try:
        scheduler.lookup_executor(executor)
    except KeyError:
        raise TasksFileError(
            spec.path,
            f"{task.key}.executor",
            f"the scheduler has no executor {executor!r}",
            executor,
        ) from None
    try:
        return Task(
            id=task.id,
            fn=task.reference,
            name=task.name,
            args=task.args,
            kwargs=dict(task.kwargs),
            trigger=trigger,
            executor=executor,
            **fields,
        )
    except (TypeError, ValueError) as exc:
        raise TasksFileError(spec.path, task.key, _message(exc)) from exc


def apply(spec: TasksFile, scheduler: Any) -> ApplyReport:
    """Make the stored tasks of the running ``scheduler`` what ``spec`` says (see the module
    docstring); returns what it did. Every task is checked against the scheduler (its store
    and executor exist) before anything is written."""
    if not getattr(scheduler, "running", False):
        raise SchedulerNotRunningError
    report = ApplyReport()
    wanted = [(task, _wanted(spec, task, scheduler)) for task in spec.tasks]
    for task, target in wanted:
        try:
            _apply_one(spec, task, target, scheduler, report)
        except TasksFileError:
            raise
        except Exception as exc:
            raise TasksFileError(
                spec.path, task.key, f"task {task.id!r} could not be applied: {_message(exc)}"
            ) from exc
    listed = {task.id for task in spec.tasks}
    for alias in spec.owns_tasks:
        try:
            stored = scheduler.get_tasks(store=alias)
        except KeyError:
            continue  # the scheduler was created without that store
        for candidate in stored:
            if candidate.id in listed:
                continue
            try:
                scheduler.delete_task(candidate.id, alias)
            except TaskLookupError:
                continue  # another scheduler applying the same file came first
            logger.info(
                "Removed task %r: %s owns store %r and no longer lists it",
                candidate.id,
                spec.path,
                alias,
            )
            report.removed.append(candidate.id)
    logger.info("Applied %s: %s", spec.path, report)
    return report


def _first_time(scheduler: Any, target: Task) -> Any:
    assert target.trigger is not None
    return target.trigger.get_next_trigger_time(scheduler.timezone, None, current_time())


def _add(spec: TasksFile, task: TaskSpec, target: Task, scheduler: Any, replace: bool) -> bool:
    """Add ``target``; False if it is expired (nothing to add). ConflictIdError propagates."""
    first = _first_time(scheduler, target)
    expired = first is None or (
        task.trigger.alias == "date" and "run_at" in task.trigger.given and first < current_time()
    )
    if expired:
        return False
    extra: dict[str, Any] = {"next_run_time": None} if task.paused else {}
    scheduler.add_task(
        _copy(target), store=task.store or "default", replace_existing=replace, **extra
    )
    return True


def _copy(target: Task) -> Task:
    """A fresh unbound Task like ``target`` (add_task binds the one it is given)."""
    return Task(
        id=target.id,
        fn=target.fn,
        name=target.name,
        args=target.args,
        kwargs=dict(target.kwargs),
        trigger=target.trigger,
        executor=target.executor,
        coalesce=target.coalesce,
        max_instances=target.max_instances,
        mistrigger_grace_time=target.mistrigger_grace_time,
        timeout=target.timeout,
        on_crash=target.on_crash,
    )


def _lookup(scheduler: Any, task_id: str) -> tuple[Task | None, str | None]:
    try:
        found, alias = scheduler.lookup_task(task_id)
    except TaskLookupError:
        return None, None
    return found, alias


def _quarantined_in(scheduler: Any, task_id: str) -> str | None:
    """The alias of a store holding ``task_id`` as a record it cannot restore, if any."""
    for alias, store in list(scheduler.stores.items()):
        quarantined = getattr(store, "get_quarantined", None)
        if quarantined is not None and task_id in quarantined():
            return str(alias)
    return None


def _replace_unreadable(
    spec: TasksFile, task: TaskSpec, target: Task, scheduler: Any, report: ApplyReport
) -> None:
    """The file says what the task is now: a record under its id that cannot be restored (an
    old callable, a trigger plugin gone) is replaced. Its run state cannot be read, so the task
    starts afresh."""
    unreadable = _quarantined_in(scheduler, task.id)
    if unreadable is not None and unreadable != (task.store or "default"):
        scheduler.lookup_store(unreadable).delete_task(task.id)
    logger.warning(
        "Task %r in store %r cannot be restored; replacing it with the one in %s",
        task.id,
        unreadable,
        spec.path,
    )
    if _add(spec, task, target, scheduler, replace=True):
        report.updated.append(task.id)
    else:
        report.expired.append(task.id)


def _apply_one(
    spec: TasksFile, task: TaskSpec, target: Task, scheduler: Any, report: ApplyReport
) -> None:
    wanted_store = task.store or "default"
    existing, alias = _lookup(scheduler, task.id)
    if existing is None:
        try:
            if _add(spec, task, target, scheduler, replace=False):
                report.added.append(task.id)
            else:
                report.expired.append(task.id)
            return
        except ConflictIdError:
            # Another scheduler sharing the store added it meanwhile (compare with that one),
            # or the store holds a record under this id that it cannot restore.
            existing, alias = _lookup(scheduler, task.id)
        if existing is None:
            _replace_unreadable(spec, task, target, scheduler, report)
            return
    assert alias is not None
    if alias != wanted_store:
        # Moved to another store: its run state lives with the old record, so it starts afresh.
        scheduler.delete_task(task.id, alias)
        if _add(spec, task, target, scheduler, replace=True):
            report.updated.append(task.id)
        else:
            report.removed.append(task.id)
        return

    changes: dict[str, Any] = {
        name: getattr(target, name)
        for name in _COMPARED
        if getattr(existing, name) != getattr(target, name)
    }
    if existing.fn_reference != target.fn_reference:
        changes["fn"] = target.fn
    paused_now = existing.next_run_time is None
    keep_paused = task.paused is True or (paused_now and task.paused is None)
    if not _same_trigger(existing.trigger, target.trigger, task.trigger):
        changes["trigger"] = target.trigger
        changes["next_run_time"] = None if keep_paused else _first_time(scheduler, target)
    elif task.paused is True and not paused_now:
        changes["next_run_time"] = None
    elif task.paused is False and paused_now:
        changes["next_run_time"] = _first_time(scheduler, target)
    if not changes:
        report.unchanged.append(task.id)
        return
    if "next_run_time" in changes and changes["next_run_time"] is None and not keep_paused:
        # The new trigger (or a resumed one) has no time left: the task is done.
        try:
            scheduler.delete_task(task.id, alias)
        except TaskLookupError:
            pass
        report.removed.append(task.id)
        return
    scheduler.update_task(task.id, alias, **changes)
    logger.info("Updated task %r (%s)", task.id, ", ".join(sorted(changes)))
    report.updated.append(task.id)

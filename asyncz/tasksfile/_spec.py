"""Reading and checking a tasks file: TOML in, :class:`TasksFile` out, or :class:`TasksFileError`.

Every check happens here, before any scheduler or store exists: the keys (unknown ones are named
with the closest valid one), the store, executor and trigger plugin aliases, the options of
each plugin, the task fields (through :class:`~asyncz.core.task.Task`'s own validators), the
callables (imported and their arguments bound) and the triggers (built once, by the trigger
classes themselves). An error names the file, the key path (``tasks[2].trigger.hours``), the
value found and what would be valid.

Not here: creating the scheduler and applying the tasks (:mod:`asyncz.tasksfile._apply`), running
command tasks (:mod:`asyncz.tasksfile.command`).
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from asyncz.core.converters import callable_name, check_callable_args, obj_to_ref, ref_to_obj
from asyncz.core.converters import to_timezone as _to_timezone
from asyncz.core.errors import PluginLoadError, UnknownAliasError
from asyncz.core.plugins import PluginRegistry, default_registry
from asyncz.core.task import Task, task_id_problem
from asyncz.tasksfile.command import COMMAND_REFERENCE

if TYPE_CHECKING:
    from asyncz.core.protocols import Trigger
    from asyncz.schedulers import AsyncIOScheduler
    from asyncz.tasksfile._apply import ApplyReport

__all__ = ["TaskSpec", "TasksFile", "TasksFileError", "TriggerSpec", "load_tasks_file"]

#: The store every file gets under the alias ``default`` unless it configures one itself.
DEFAULT_STORE: dict[str, Any] = {"type": "sqlalchemy", "database": "sqlite:///asyncz.db"}

_TOP_KEYS = ("asyncz", "stores", "executors", "task_defaults", "tasks")
_ASYNCZ_KEYS = ("timezone", "owns_tasks", "python_path")
_POLICY_KEYS = ("coalesce", "max_instances", "mistrigger_grace_time", "timeout", "on_crash")
_TASK_KEYS = (
    "id",
    "name",
    "callable",
    "command",
    "shell",
    "cwd",
    "env",
    "trigger",
    "args",
    "kwargs",
    "executor",
    "store",
    "paused",
    *_POLICY_KEYS,
)
_COMMAND_ONLY = ("shell", "cwd", "env")
_NO_VALUE = object()


class TasksFileError(ValueError):
    """A tasks file that cannot be read or does not validate.

    ``str(error)`` is one line a person can act on: ``tasks.toml: tasks[2].trigger.hours: ...``.

    :var path: the file
    :var key: the key path of the bad value (``None`` for the file as a whole, e.g. bad TOML)
    :var value: the bad value (``None`` when there is none to show)
    :var problem: what is wrong and what would be valid
    """

    def __init__(
        self, path: str | os.PathLike[str], key: str | None, problem: str, value: Any = _NO_VALUE
    ) -> None:
        self.path = os.fspath(path)
        self.key = key
        self.problem = problem
        self.value = None if value is _NO_VALUE else value
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {problem}")


@attrs.frozen(kw_only=True)
class TriggerSpec:
    """A trigger as the file writes it.

    :var alias: the trigger plugin alias (``"interval"``)
    :var options: its keyword arguments; the ``triggers`` of ``and``/``or`` are TriggerSpecs
    :var key: its key path in the file (``tasks[0].trigger``)
    """

    alias: str
    options: Mapping[str, Any]
    key: str

    def build(self, plugins: PluginRegistry, timezone: tzinfo) -> Trigger:
        """The trigger, made by its class (``crontab = "..."`` through ``from_crontab``); a
        trigger without a ``timezone`` option gets ``timezone`` as ``scheduler.add_task``
        gives it the scheduler's."""
        cls = plugins.resolve("trigger", self.alias)
        options = dict(self.options)
        nested = options.get("triggers")
        if isinstance(nested, list):
            options["triggers"] = [child.build(plugins, timezone) for child in nested]
        crontab = options.pop("crontab", None)
        factory: Any = cls if crontab is None else getattr(cls, "from_crontab")  # noqa: B009
        if (
            "timezone" not in options
            and not any(_is_aware(options.get(name)) for name in ("start_at", "end_at"))
            and _accepts(factory, "timezone")
        ):
            options["timezone"] = timezone
        if crontab is not None:
            return factory(crontab, **options)  # type: ignore[no-any-return]
        return factory(**options)  # type: ignore[no-any-return]

    @property
    def given(self) -> frozenset[str]:
        """The option names the file gives (the rest take defaults, some of them from now)."""
        return frozenset(self.options)


@attrs.frozen(kw_only=True)
class TaskSpec:
    """One ``[[tasks]]`` entry, checked.

    :var index: its position in the file (``tasks[index]``)
    :var id: the task id
    :var name: the name given, or ``None`` (the callable's name; a command task: the command)
    :var reference: the callable's ``"module:qualname"`` (command tasks: ``run_command``'s)
    :var args: positional arguments
    :var kwargs: keyword arguments (a command task: the command and how to run it)
    :var trigger: the trigger
    :var executor: the executor alias given, or ``None`` (the scheduler's default)
    :var store: the store alias given, or ``None`` (``"default"``)
    :var options: the run policy fields the task gives (``max_instances``, ``coalesce``,
        ``mistrigger_grace_time``, ``timeout``, ``on_crash``); the others come from the task
        defaults
    :var paused: ``True``: keep it paused; ``False``: keep it running (resume it if it was
        paused); ``None`` (not given): scheduled when added, and then left as it is
    :var command: the command of a command task, else ``None``
    """

    index: int
    id: str
    name: str | None
    reference: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    trigger: TriggerSpec
    executor: str | None
    store: str | None
    options: Mapping[str, Any]
    paused: bool | None
    command: str | tuple[str, ...] | None = None

    @property
    def key(self) -> str:
        return f"tasks[{self.index}]"


@attrs.frozen(kw_only=True)
class TasksFile:
    """A checked tasks file (see ``docs/tasks-file.md`` for the format).

    :var path: where it was read from
    :var timezone: the scheduler's time zone given by ``[asyncz] timezone``, or ``None`` (local)
    :var owns_tasks: the aliases of the stores whose tasks the file owns (tasks there that the
        file does not list are removed by :meth:`apply`); empty: it owns none
    :var python_path: directories put on ``sys.path`` so the callables import
    :var stores: store configurations by alias (always one under ``"default"``)
    :var executors: executor configurations by alias
    :var task_defaults: the ``[task_defaults]`` table
    :var tasks: the tasks, in file order
    """

    path: Path
    timezone: str | None
    owns_tasks: tuple[str, ...]
    python_path: tuple[str, ...]
    stores: Mapping[str, Mapping[str, Any]]
    executors: Mapping[str, Mapping[str, Any]]
    task_defaults: Mapping[str, Any]
    tasks: tuple[TaskSpec, ...]

    def scheduler_options(self, **overrides: Any) -> dict[str, Any]:
        """The options for ``AsyncIOScheduler(**options)``: the file's, with ``overrides`` on
        top (``stores`` and ``executors`` are merged by alias, the rest replaced)."""
        options: dict[str, Any] = {
            "stores": {alias: dict(config) for alias, config in self.stores.items()},
            "executors": {alias: dict(config) for alias, config in self.executors.items()},
            "task_defaults": dict(self.task_defaults),
        }
        if self.timezone is not None:
            options["timezone"] = self.timezone
        for name, value in overrides.items():
            if name in ("stores", "executors", "task_defaults") and isinstance(value, Mapping):
                options[name] = {**options[name], **value}
            else:
                options[name] = value
        return options

    def create_scheduler(self, **overrides: Any) -> AsyncIOScheduler:
        """An :class:`~asyncz.schedulers.AsyncIOScheduler` configured as the file says (not
        started); keyword ``overrides`` win over the file (see :meth:`scheduler_options`).

        A store or executor the file configures that cannot be created raises
        :class:`TasksFileError` naming it."""
        from asyncz.schedulers import AsyncIOScheduler

        options = self.scheduler_options(**overrides)
        plugins = options.get("plugin_registry") or default_registry()
        for kind, section in (("store", "stores"), ("executor", "executors")):
            for alias, config in options[section].items():
                plugin = config.get("type") if isinstance(config, Mapping) else None
                if not isinstance(plugin, str):
                    continue
                try:
                    plugins.resolve(kind, plugin)
                except (ImportError, PluginLoadError) as exc:
                    problem = _unloadable(kind, plugin, exc)
                    if section == "stores" and alias == "default" and config == DEFAULT_STORE:
                        problem = (
                            "the default store (SQLite in ./asyncz.db, used when the file has "
                            "no [stores.default]) needs SQLAlchemy: pip install "
                            "'asyncz[sqlalchemy]', or configure [stores.default]"
                        )
                    raise TasksFileError(self.path, f"{section}.{alias}", problem) from exc
                except LookupError:
                    continue  # an unknown alias: the scheduler's own error says it best
        try:
            return AsyncIOScheduler(**options)
        except (TypeError, ValueError, LookupError, ImportError) as exc:
            raise TasksFileError(self.path, _blame(exc, options), _message(exc)) from exc

    def apply(self, scheduler: Any) -> ApplyReport:
        """Make the running ``scheduler``'s stored tasks what the file says (see
        :func:`asyncz.tasksfile._apply.apply`)."""
        from asyncz.tasksfile._apply import apply

        return apply(self, scheduler)


def _blame(exc: BaseException, options: Mapping[str, Any]) -> str | None:
    """The ``stores.X``/``executors.X`` key a scheduler construction error is about, if its
    message names one alias."""
    text = str(exc)
    for kind in ("stores", "executors"):
        for alias in options.get(kind, {}):
            if re.search(rf"\b{re.escape(alias)}\b", text):
                return f"{kind}.{alias}"
    return None


#: The extra that brings a built-in plugin's dependency.
_EXTRAS = {("store", "sqlalchemy"): "sqlalchemy", ("store", "redis"): "redis"}


def _unloadable(kind: str, plugin: str, exc: BaseException) -> str:
    extra = _EXTRAS.get((kind, plugin))
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if extra is not None:
        return f"the {plugin!r} {kind} cannot be loaded ({cause}): pip install 'asyncz[{extra}]'"
    return _message(exc)


def _message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if isinstance(exc, UnknownAliasError) else " ".join(text.split())


def _is_aware(value: Any) -> bool:
    return isinstance(value, datetime) and value.utcoffset() is not None


def _accepts(factory: Any, name: str) -> bool:
    try:
        return name in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def _closest(word: str, choices: Sequence[str]) -> str:
    match = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _type_name(value: Any) -> str:
    names = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "an array",
        dict: "a table",
        datetime: "a date-time",
        date: "a date",
    }
    return names.get(type(value), type(value).__name__)


class _Reader:
    """Walks the parsed TOML, raising :class:`TasksFileError` with the key path."""

    def __init__(self, path: Path, plugins: PluginRegistry) -> None:
        self.path = path
        self.plugins = plugins

    def fail(self, key: str | None, problem: str, value: Any = _NO_VALUE) -> TasksFileError:
        return TasksFileError(self.path, key, problem, value)

    def table(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, got {_type_name(value)} {value!r}", value)
        return value

    def known_keys(self, table: Mapping[str, Any], valid: Sequence[str], key: str) -> None:
        for name in table:
            if name not in valid:
                prefix = f"{key}." if key else ""
                raise self.fail(
                    f"{prefix}{name}",
                    f"unknown key{_closest(name, valid)}; valid keys here are {', '.join(valid)}",
                )

    def string(self, value: Any, key: str, what: str = "a string") -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be {what}, got {_type_name(value)} {value!r}", value)
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}", value)
        return value

    # -- sections --------------------------------------------------------------------------

    def plugin_configs(self, value: Any, kind: str, key: str) -> dict[str, dict[str, Any]]:
        """``[stores.X]`` / ``[executors.X]``: a ``type`` (plugin alias) and its options."""
        configs: dict[str, dict[str, Any]] = {}
        for alias, config in self.table(value, key).items():
            here = f"{key}.{alias}"
            config = dict(self.table(config, here))
            plugin = config.get("type")
            if plugin is None:
                raise self.fail(
                    f"{here}.type",
                    f"missing: the {kind} plugin alias, one of {', '.join(self._aliases(kind))}",
                )
            self.string(plugin, f"{here}.type", f"a {kind} plugin alias")
            try:
                cls = self.plugins.resolve(kind, plugin)
            except UnknownAliasError:
                raise self.fail(
                    f"{here}.type",
                    f"no {kind} plugin is registered as {plugin!r}"
                    f"{_closest(plugin, self._aliases(kind))}; "
                    f"registered: {', '.join(self._aliases(kind))}",
                    plugin,
                ) from None
            except (ImportError, PluginLoadError) as exc:
                raise self.fail(f"{here}.type", _unloadable(kind, plugin, exc), plugin) from None
            self._check_options(cls, config, here, skip=("type",))
            configs[alias] = config
        return configs

    def _aliases(self, kind: str) -> list[str]:
        return sorted({p.alias for p in self.plugins.providers(kind)})

    def _check_options(
        self, factory: Any, options: Mapping[str, Any], key: str, skip: Sequence[str] = ()
    ) -> None:
        """Names ``factory`` does not take (when its signature says which it takes)."""
        try:
            parameters = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            return
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return  # it names unknown options itself
        valid = [n for n, p in parameters.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
        for name in options:
            if name not in skip and name not in valid:
                raise self.fail(
                    f"{key}.{name}",
                    f"{getattr(factory, '__name__', factory)} takes no option {name!r}"
                    f"{_closest(name, valid)}; its options are {', '.join(valid)}",
                )

    def policy(self, table: Mapping[str, Any], key: str) -> dict[str, Any]:
        """The run policy fields of a task or of ``[task_defaults]``, each checked by Task."""
        fields: dict[str, Any] = {}
        for name in _POLICY_KEYS:
            if name not in table:
                continue
            value = table[name]
            try:
                Task(**{name: value})
            except (TypeError, ValueError) as exc:
                raise self.fail(f"{key}.{name}", _field_problem(exc), value) from None
            fields[name] = value
        return fields

    def trigger(self, value: Any, key: str, timezone: tzinfo) -> TriggerSpec:
        options = dict(self.table(value, key))
        alias = options.pop("type", None)
        if alias is None:
            raise self.fail(
                f"{key}.type",
                f"missing: the trigger plugin alias, one of {', '.join(self._aliases('trigger'))}",
            )
        self.string(alias, f"{key}.type", "a trigger plugin alias")
        try:
            cls = self.plugins.resolve("trigger", alias)
        except UnknownAliasError:
            aliases = self._aliases("trigger")
            raise self.fail(
                f"{key}.type",
                f"no trigger plugin is registered as {alias!r}{_closest(alias, aliases)}; "
                f"registered: {', '.join(aliases)}",
                alias,
            ) from None
        nested = options.get("triggers")
        if nested is not None and _accepts(cls, "triggers"):
            if not isinstance(nested, list) or not nested:
                raise self.fail(
                    f"{key}.triggers",
                    f"must be a non-empty array of trigger tables, got {nested!r}",
                    nested,
                )
            options["triggers"] = [
                self.trigger(child, f"{key}.triggers[{i}]", timezone)
                for i, child in enumerate(nested)
            ]
        if "crontab" in options and not hasattr(cls, "from_crontab"):
            raise self.fail(f"{key}.crontab", f"the {alias!r} trigger takes no crontab expression")
        spec = TriggerSpec(alias=alias, options=options, key=key)
        # The trigger class is the judge of its options: build it once and place its complaint.
        try:
            spec.build(self.plugins, timezone)
        except (TypeError, ValueError, OverflowError) as exc:
            option = _option_named(str(exc), options)
            if option is None:
                raise self.fail(key, _message(exc)) from None
            raise self.fail(f"{key}.{option}", _message(exc), options[option]) from None
        return spec


def _field_problem(exc: BaseException) -> str:
    notes = getattr(exc, "__notes__", None) or []
    return ", ".join([str(exc).rstrip("."), *notes])


def _option_named(message: str, options: Mapping[str, Any]) -> str | None:
    """The option a trigger's error message is about: the given option named earliest in it
    (``hour='99': ...``, ``... unknown argument(s) 'hourz'``, ``interval hours must ...``)."""
    found: list[tuple[int, str]] = []
    for name in options:
        match = re.search(rf"(?<![\w.]){re.escape(name)}(?![\w(])", message)
        if match:
            found.append((match.start(), name))
    return min(found)[1] if found else None


def _parse(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise TasksFileError(
                path,
                None,
                "reading a tasks file on Python 3.10 needs the tomli package: "
                "pip install 'asyncz[cli]' (or pip install tomli)",
            ) from None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TasksFileError(path, None, f"cannot read the file: {exc.strerror or exc}") from None
    try:
        document: dict[str, Any] = tomllib.loads(data.decode("utf-8"))
        return document
    except UnicodeDecodeError as exc:
        raise TasksFileError(path, None, f"not UTF-8 text: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TasksFileError(path, None, f"not valid TOML: {exc}") from None


def load_tasks_file(
    path: str | os.PathLike[str], *, plugins: PluginRegistry | None = None
) -> TasksFile:
    """Read and check the tasks file at ``path``.

    Nothing is created or started; the directories of ``[asyncz] python_path`` (default: the
    file's own directory) are put on ``sys.path`` and the callables imported, to check them.
    Raises :class:`TasksFileError` for anything wrong, naming the key path and what is valid.
    """
    path = Path(path)
    reader = _Reader(path, plugins or default_registry())
    document = _parse(path)
    reader.known_keys(document, _TOP_KEYS, "")

    settings = reader.table(document.get("asyncz", {}), "asyncz")
    reader.known_keys(settings, _ASYNCZ_KEYS, "asyncz")
    zone_name = settings.get("timezone")
    if zone_name is not None:
        reader.string(zone_name, "asyncz.timezone", "a time zone name such as 'UTC'")
        try:
            timezone = _to_timezone(zone_name)
        except ValueError as exc:
            raise reader.fail("asyncz.timezone", str(exc), zone_name) from None
    else:
        timezone = _to_timezone(None)
    python_path = _python_path(reader, settings.get("python_path", ["."]))

    stores = reader.plugin_configs(document.get("stores", {}), "store", "stores")
    stores.setdefault("default", dict(DEFAULT_STORE))
    executors = reader.plugin_configs(document.get("executors", {}), "executor", "executors")

    owns = settings.get("owns_tasks", False)
    if isinstance(owns, bool):
        owned: tuple[str, ...] = tuple(stores) if owns else ()
    elif isinstance(owns, list) and owns:
        for i, alias in enumerate(owns):
            if alias not in stores:
                raise reader.fail(
                    f"asyncz.owns_tasks[{i}]",
                    f"no store {alias!r} in this file; its stores are {', '.join(stores)}",
                    alias,
                )
        owned = tuple(dict.fromkeys(owns))
    else:
        raise reader.fail(
            "asyncz.owns_tasks",
            f"must be true, false or a non-empty array of store aliases, got {owns!r}",
            owns,
        )

    defaults_table = reader.table(document.get("task_defaults", {}), "task_defaults")
    reader.known_keys(defaults_table, _POLICY_KEYS, "task_defaults")
    task_defaults = reader.policy(defaults_table, "task_defaults")

    raw_tasks = document.get("tasks", [])
    if not isinstance(raw_tasks, list):
        raise reader.fail(
            "tasks", f"must be an array of tables ([[tasks]]), got {_type_name(raw_tasks)}"
        )
    for directory in reversed(python_path):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    tasks: list[TaskSpec] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_tasks):
        spec = _task(reader, raw, index, timezone, stores, executors, task_defaults, path.parent)
        if spec.id in seen:
            raise reader.fail(
                f"{spec.key}.id",
                f"the id {spec.id!r} is also the id of tasks[{seen[spec.id]}]; ids are unique",
                spec.id,
            )
        seen[spec.id] = index
        tasks.append(spec)
    return TasksFile(
        path=path,
        timezone=zone_name,
        owns_tasks=owned,
        python_path=tuple(python_path),
        stores=stores,
        executors=executors,
        task_defaults=task_defaults,
        tasks=tuple(tasks),
    )


def _python_path(reader: _Reader, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise reader.fail(
            "asyncz.python_path",
            f"must be an array of directories (relative to the file), got {value!r}",
            value,
        )
    base = reader.path.parent
    return [os.path.abspath(base / entry) for entry in value]


def _task(
    reader: _Reader,
    raw: Any,
    index: int,
    timezone: tzinfo,
    stores: Mapping[str, Any],
    executors: Mapping[str, Any],
    task_defaults: Mapping[str, Any],
    base: Path,
) -> TaskSpec:
    key = f"tasks[{index}]"
    table = reader.table(raw, key)
    reader.known_keys(table, _TASK_KEYS, key)

    if "id" not in table:
        raise reader.fail(
            f"{key}.id", "missing: every task needs an id (how re-reading the file finds it)"
        )
    task_id = table["id"]
    if not isinstance(task_id, str):
        raise reader.fail(f"{key}.id", f"must be a string, got {task_id!r}", task_id)
    problem = task_id_problem(task_id)
    if problem is not None:
        raise reader.fail(f"{key}.id", problem, task_id)

    name = table.get("name")
    if name is not None:
        reader.string(name, f"{key}.name", "a non-empty string")

    if "trigger" not in table:
        raise reader.fail(
            f"{key}.trigger",
            'missing: a trigger table such as { type = "interval", minutes = 5 }',
        )

    has_callable, has_command = "callable" in table, "command" in table
    if has_callable == has_command:
        raise reader.fail(
            key,
            "needs exactly one of callable = 'module:function' and command = '...' "
            f"(found {'both' if has_callable else 'neither'})",
        )
    command: str | tuple[str, ...] | None = None
    if has_callable:
        for name_ in _COMMAND_ONLY:
            if name_ in table:
                raise reader.fail(f"{key}.{name_}", "only a command task takes this key")
        reference, args, kwargs = _callable(reader, table, key)
    else:
        for name_ in ("args", "kwargs"):
            if name_ in table:
                raise reader.fail(
                    f"{key}.{name_}",
                    "a command task takes no args/kwargs: write them in the command",
                )
        command, kwargs = _command(reader, table, key, base)
        reference, args = COMMAND_REFERENCE, ()
        if name is None:
            name = command if isinstance(command, str) else shlex.join(command)
            if len(name) > 80:
                name = name[:77] + "..."

    trigger = reader.trigger(table["trigger"], f"{key}.trigger", timezone)

    executor = table.get("executor")
    if executor is not None:
        reader.string(executor, f"{key}.executor", "an executor alias")
        if executor != "default" and executor not in executors:
            raise reader.fail(
                f"{key}.executor",
                f"no executor {executor!r} in [executors]; known: "
                f"{', '.join(['default', *(e for e in executors if e != 'default')])}",
                executor,
            )
    store = table.get("store")
    if store is not None:
        reader.string(store, f"{key}.store", "a store alias")
        if store not in stores:
            raise reader.fail(
                f"{key}.store",
                f"no store {store!r} in [stores]; known: {', '.join(stores)}",
                store,
            )
    options = reader.policy(table, key)
    paused = table.get("paused")
    if paused is not None:
        reader.boolean(paused, f"{key}.paused")
    timeout = options.get("timeout", task_defaults.get("timeout"))
    if command is not None and timeout is not None:
        # The process is killed at the task's timeout (a thread running it cannot be stopped).
        kwargs["timeout"] = float(timeout)
    return TaskSpec(
        index=index,
        id=task_id,
        name=name,
        reference=reference,
        args=args,
        kwargs=kwargs,
        trigger=trigger,
        executor=executor,
        store=store,
        options=options,
        paused=paused,
        command=command,
    )


def _callable(
    reader: _Reader, table: Mapping[str, Any], key: str
) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    written = table["callable"]
    if not isinstance(written, str) or ":" not in written:
        raise reader.fail(
            f"{key}.callable",
            f"must be a reference 'package.module:function', got {written!r}",
            written,
        )
    try:
        fn = ref_to_obj(written)
    except (LookupError, ValueError, TypeError) as exc:
        raise reader.fail(
            f"{key}.callable",
            f"cannot be imported: {exc} (is its directory in [asyncz] python_path?)",
            written,
        ) from None
    except Exception as exc:  # the module itself fails while importing
        raise reader.fail(
            f"{key}.callable",
            f"importing it raised {type(exc).__name__}: {exc}",
            written,
        ) from None
    if not callable(fn):
        raise reader.fail(f"{key}.callable", f"names {fn!r}, which is not callable", written)
    try:
        reference = obj_to_ref(fn)
    except ValueError as exc:
        raise reader.fail(
            f"{key}.callable",
            f"{exc}: a stored task needs a module-level function, class method or static method",
            written,
        ) from None
    args = table.get("args", [])
    if not isinstance(args, list):
        raise reader.fail(f"{key}.args", f"must be an array, got {_type_name(args)} {args!r}", args)
    kwargs = table.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise reader.fail(
            f"{key}.kwargs", f"must be a table, got {_type_name(kwargs)} {kwargs!r}", kwargs
        )
    try:
        check_callable_args(fn, args, kwargs)
    except ValueError as exc:
        where = "kwargs" if "kwargs" in table and "keyword" in str(exc) else "args"
        raise reader.fail(
            f"{key}.{where}", f"{exc} (calling {callable_name(fn)})", table.get(where)
        ) from None
    return reference, tuple(args), dict(kwargs)


def _command(
    reader: _Reader, table: Mapping[str, Any], key: str, base: Path
) -> tuple[str | tuple[str, ...], dict[str, Any]]:
    written = table["command"]
    shell = table.get("shell", False)
    reader.boolean(shell, f"{key}.shell")
    command: str | tuple[str, ...]
    if isinstance(written, str):
        if not written.strip():
            raise reader.fail(f"{key}.command", "must not be empty", written)
        if shell:
            argv = None
        else:
            try:
                argv = shlex.split(written)
            except ValueError as exc:
                raise reader.fail(f"{key}.command", f"cannot be split: {exc}", written) from None
        command = written
    elif isinstance(written, list) and written and all(isinstance(a, str) for a in written):
        if shell:
            raise reader.fail(
                f"{key}.command", "with shell = true the command must be one string", written
            )
        argv = list(written)
        command = tuple(written)
    else:
        raise reader.fail(
            f"{key}.command",
            f"must be a string or a non-empty array of strings, got {written!r}",
            written,
        )
    kwargs: dict[str, Any] = {"command": command if isinstance(command, str) else list(command)}
    if shell:
        kwargs["shell"] = True
    cwd = table.get("cwd")
    if cwd is not None:
        reader.string(cwd, f"{key}.cwd", "a directory")
        resolved = (base / cwd).resolve()
        if not resolved.is_dir():
            raise reader.fail(f"{key}.cwd", f"{str(resolved)!r} is not a directory", cwd)
        kwargs["cwd"] = str(resolved)
    env = table.get("env")
    if env is not None:
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise reader.fail(
                f"{key}.env", f'must be a table of strings (NAME = "value"), got {env!r}', env
            )
        kwargs["env"] = dict(env)
    if argv is not None and "/" not in argv[0] and shutil.which(argv[0]) is None:
        raise reader.fail(
            f"{key}.command",
            f"{argv[0]!r} is not a program on PATH (write its full path, or shell = true "
            "for a shell built-in)",
            written,
        )
    kwargs["task_id"] = table["id"]
    return command, kwargs

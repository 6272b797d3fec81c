"""The scheduler's configuration: options, plugins (stores, executors, triggers) and listeners.

Here: ``_ConfigurationMixin`` with ``setup``/``_setup`` (options, time zone, identity,
logger, locks, delays, task defaults), creating plugins from instances, aliases or config dicts,
adding, removing and looking up stores and executors, ``create_trigger``, and the listeners with
event dispatch (``add_listener``, ``dispatch_event`` and the task and submission events).

Not here: the task API (:mod:`asyncz.core.task_api`), starting, stopping and the due-task pass
(:mod:`asyncz.core.engine`), the asyncio loop (:mod:`asyncz.core.asyncio_scheduler`).
"""

from __future__ import annotations

import functools
import inspect
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from typing import Any

from asyncz.core import events
from asyncz.core.cluster import OUTCOME_CODES
from asyncz.core.config import coerce_options, merge_options, parse_global_config
from asyncz.core.converters import maybe_ref, ref_to_obj, to_timezone
from asyncz.core.errors import SchedulerAlreadyRunningError
from asyncz.core.locks import FileLockProtected, LockProtectedProtocol, NullLockProtected
from asyncz.core.logs import default_loggers_class
from asyncz.core.plugins import PluginRegistry, default_registry
from asyncz.core.protocols import Executor, Store, Trigger
from asyncz.core.scheduler_common import _check_alias, _SchedulerCore
from asyncz.core.task import Task

_TASK_DEFAULT_KEYS = frozenset(
    {"mistrigger_grace_time", "coalesce", "max_instances", "timeout", "on_crash"}
)


class TaskDefaults(dict[str, Any]):
    """The values tasks added without them get (the ``task_defaults`` option).

    A plain dict (the task API spreads it into every new task), readable as attributes and with
    ``model_dump()`` as Asyncz's model has: Asyncz's three fields, plus ``timeout`` when set.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def model_dump(self) -> dict[str, Any]:
        data = dict(self)
        if data.get("timeout") is None:
            data.pop("timeout", None)
        return data


def _positive_or_zero(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")
    return float(value)


class _ConfigurationMixin(_SchedulerCore):
    """Options, plugins and listeners of a scheduler (part of :class:`BaseScheduler`)."""

    # -- configuration ---------------------------------------------------------------------

    def setup(
        self,
        global_config: Mapping[str, Any] | None = None,
        prefix: str = "asyncz.",
        **options: Any,
    ) -> None:
        """(Re)configure the scheduler; only while it is stopped. Stores and executors added
        before are replaced by the configured ones."""
        if self.running:
            raise SchedulerAlreadyRunningError
        config = parse_global_config(global_config or {}, prefix)
        merged = merge_options(config, options)
        unknown = set(merged) - self.option_names
        if unknown:
            raise TypeError(
                f"unknown scheduler option(s) {', '.join(sorted(map(repr, unknown)))}; valid "
                f"options are {', '.join(sorted(self.option_names))}"
            )
        # All or nothing: a failed setup leaves the scheduler configured as it was.
        snapshot = dict(self.__dict__)
        stores, executors = dict(self._stores), dict(self._executors)
        try:
            self._setup(merged)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(snapshot)
            self._stores.clear()
            self._stores.update(stores)
            self._executors.clear()
            self._executors.update(executors)
            raise

    def _setup(self, options: dict[str, Any]) -> None:
        """Apply merged options (strings from configuration files are coerced here)."""
        self._shape = options.get("shape")
        defaults = options.get("task_defaults")
        if defaults is not None and not isinstance(defaults, Mapping):
            # A model object (dataclass, attrs, msgspec, pydantic): its Shape reads it.
            from asyncz.shapes import ShapeContext

            context = ShapeContext(entity="task_defaults", operation="configure")
            options = {
                **options,
                "task_defaults": self.shape.dump_mapping(defaults, context=context),
            }
        options = coerce_options(options)
        registry = options.get("plugin_registry")
        if registry is not None and not isinstance(registry, PluginRegistry):
            raise TypeError(f"plugin_registry must be a PluginRegistry, got {registry!r}")
        self.plugins: PluginRegistry = registry or default_registry()
        self.timezone: tzinfo = to_timezone(options.get("timezone"))
        identity = options.get("identity") or None  # "" too means: generate one
        if identity is not None and (not isinstance(identity, str) or not identity.strip()):
            raise ValueError(f"identity must be a non-empty string, got {identity!r}")
        self.identity: str = identity or f"{type(self).__name__}-{uuid.uuid4().hex[:12]}"
        logger_name = options.get("logger_name")
        if logger_name is not None and not isinstance(logger_name, str):
            raise TypeError(f"logger_name must be a string, got {logger_name!r}")
        loggers_class = maybe_ref(options.get("loggers_class")) or default_loggers_class
        if not callable(loggers_class):
            raise TypeError(
                f"loggers_class must be a class (or 'module:Class') whose instances map logger "
                f"names to loggers, got {loggers_class!r}"
            )
        self.loggers: Mapping[str, logging.Logger] = loggers_class()
        self.logger_name = (
            f"asyncz.schedulers.{logger_name}" if logger_name else "asyncz.schedulers"
        )
        self.logger = self.loggers[self.logger_name]
        lock_path = options.get("lock_path") or ""
        if not isinstance(lock_path, str):
            raise TypeError(f"lock_path must be a path template string, got {lock_path!r}")
        self.lock_path: str = lock_path
        delay = options.get("startup_delay")
        self.startup_delay = _positive_or_zero(
            "startup_delay", (1.0 if lock_path else 0.0) if delay is None else delay
        )
        retry = options.get("store_retry_interval")
        self.store_retry_interval = _positive_or_zero(
            "store_retry_interval", 10.0 if retry is None else retry
        )
        if self.store_retry_interval == 0:
            raise ValueError("store_retry_interval must be > 0, got 0")
        stale = options.get("heartbeat_stale_after")
        self.heartbeat_stale_after = _positive_or_zero(
            "heartbeat_stale_after", 30.0 if stale is None else stale
        )
        interval = options.get("heartbeat_interval")
        self.heartbeat_interval = _positive_or_zero(
            "heartbeat_interval", 2.0 if interval is None else interval
        )
        if self.heartbeat_interval == 0:
            raise ValueError("heartbeat_interval must be > 0, got 0")
        dead = options.get("heartbeat_dead_after")
        self.heartbeat_dead_after = _positive_or_zero(
            "heartbeat_dead_after", 3 * self.heartbeat_interval if dead is None else dead
        )
        if self.heartbeat_dead_after <= self.heartbeat_interval:
            raise ValueError(
                f"heartbeat_dead_after must be longer than heartbeat_interval "
                f"({self.heartbeat_interval} s), got {self.heartbeat_dead_after}: a live "
                "scheduler would be declared dead between two of its heartbeats"
            )
        self.task_defaults = self._check_task_defaults(options.get("task_defaults") or {})
        self._stores.clear()
        self._executors.clear()
        for kind, adder in (("stores", self.add_store), ("executors", self.add_executor)):
            specs = options.get(kind) or {}
            if not isinstance(specs, Mapping):
                raise TypeError(f"{kind} must be a mapping of alias -> config, got {specs!r}")
            protocol = Store if kind == "stores" else Executor
            for alias, spec in specs.items():
                if not isinstance(spec, (Mapping, str, type, protocol)):
                    raise TypeError(
                        f"Expected {kind[:-1]} instance or dict for {kind}[{alias!r}], got "
                        f"{type(spec).__name__} instead."
                    )
                adder(spec, alias)

    @property
    def shape(self) -> Any:
        """The Shape that reads configuration objects (``shape`` option; Asyncz's default is
        ``"pydantic"``), resolved on first use: asyncz needs none for plain dicts."""
        from asyncz.shapes import Shape, resolve_shape

        if not isinstance(self._shape, Shape):
            self._shape = resolve_shape(self._shape)
        return self._shape

    @staticmethod
    def _check_task_defaults(defaults: Mapping[str, Any]) -> TaskDefaults:
        if not isinstance(defaults, Mapping):
            raise TypeError(f"task_defaults must be a mapping, got {defaults!r}")
        unknown = set(defaults) - _TASK_DEFAULT_KEYS
        if unknown:
            raise ValueError(
                f"unknown task_defaults key(s) {', '.join(sorted(map(repr, unknown)))}; valid "
                f"keys are {', '.join(sorted(_TASK_DEFAULT_KEYS))}"
            )
        merged = TaskDefaults(
            {
                "mistrigger_grace_time": None,
                "coalesce": True,
                "max_instances": 1,
                "timeout": None,
            }
        )
        merged.update(defaults)
        Task(**merged)  # the Task's own validators say what is wrong
        return merged

    # -- plugins ---------------------------------------------------------------------------

    def _create_plugin(self, kind: str, spec: Any, options: Mapping[str, Any]) -> Any:
        """An instance from an instance, a plugin alias or a ``{"type"|"class": ...}`` dict."""
        if isinstance(spec, Mapping):
            config = dict(spec)
            config.update(options)
            plugin_alias = config.pop("type", None)
            reference = config.pop("class", None)
            if (plugin_alias is None) == (reference is None):
                raise ValueError(
                    f"a {kind} config needs exactly one of 'type' (a plugin alias) or 'class' "
                    f"(a 'module:Class' reference), got {spec!r}"
                )
            if plugin_alias is not None:
                cls = self.plugins.resolve(kind, plugin_alias)
            else:
                cls = ref_to_obj(reference)
            return cls(**config)
        if isinstance(spec, str):
            return self.plugins.resolve(kind, spec)(**options)
        if inspect.isclass(spec):
            return spec(**options)  # Asyncz's documentation adds stores as classes
        if options:
            raise TypeError(f"options {sorted(options)} cannot be applied to a {kind} instance")
        return spec

    @staticmethod
    def resolve_load_plugin(reference: str) -> Any:
        """The object a ``"module:attr"`` reference names (Asyncz's plugin loader)."""
        return ref_to_obj(reference)

    def create_default_executor(self) -> Any:
        """The executor ``start()`` adds as "default" when none was configured."""
        return self._create_plugin("executor", self.default_executor_alias, {})

    def create_default_store(self) -> Any:
        """The store ``start()`` adds as "default" when none was configured."""
        return self._create_plugin("store", self.default_store_alias, {})

    def add_store(self, store: Any, alias: str = "default", **options: Any) -> None:
        """Add a store under an instance alias; it is started at once if the scheduler runs."""
        _check_alias("store", alias)
        instance = self._create_plugin("store", store, options)
        if not isinstance(instance, Store):
            raise TypeError(f"{instance!r} is not a store (see asyncz.core.protocols.Store)")
        with self._lock:
            if alias in self._stores:
                raise ValueError(
                    f"This scheduler already has a task store by the alias of {alias!r}."
                )
            if self.running:
                instance.start(self, alias)
                self._store_locks[alias] = self._make_store_lock(alias)
            self._stores[alias] = instance
        self._dispatch(events.SchedulerEvent(code=events.STORE_ADDED, alias=alias))
        if self.running:
            self.wakeup()

    def remove_store(self, alias: str, shutdown: bool = True) -> None:
        with self._lock:
            store = self.lookup_store(alias)
            del self._stores[alias]
            self._store_locks.pop(alias, None)
        if shutdown:
            store.shutdown()
        self._dispatch(events.SchedulerEvent(code=events.STORE_REMOVED, alias=alias))

    def add_executor(self, executor: Any, alias: str = "default", **options: Any) -> None:
        """Add an executor under an instance alias; started at once if the scheduler runs."""
        _check_alias("executor", alias)
        instance = self._create_plugin("executor", executor, options)
        if not isinstance(instance, Executor):
            raise TypeError(f"{instance!r} is not an executor (see asyncz.core.protocols)")
        with self._lock:
            if alias in self._executors:
                raise ValueError(
                    f"This scheduler already has an executor by the alias of {alias!r}."
                )
            if self.running:
                instance.start(self, alias)
            self._executors[alias] = instance
        self._dispatch(events.SchedulerEvent(code=events.EXECUTOR_ADDED, alias=alias))

    def remove_executor(self, alias: str, shutdown: bool = True) -> None:
        with self._lock:
            executor = self.lookup_executor(alias)
            del self._executors[alias]
        if shutdown:
            executor.shutdown()
        self._dispatch(events.SchedulerEvent(code=events.EXECUTOR_REMOVED, alias=alias))

    def _make_store_lock(self, alias: str) -> LockProtectedProtocol:
        if not self.lock_path:
            return NullLockProtected()
        lock = FileLockProtected(self.lock_path.replace("{store}", alias))
        try:
            with lock.protected(blocking=False):
                pass  # a path that cannot be locked must fail start(), not every pass after
        except OSError as exc:
            raise ValueError(
                f"lock_path={self.lock_path!r} cannot be used for store {alias!r}: {exc}"
            ) from exc
        return lock

    def lookup_store(self, alias: str) -> Store:
        """The store added under ``alias``; ``KeyError`` naming the aliases there are."""
        _check_alias("store", alias)
        try:
            return self._stores[alias]
        except KeyError:
            raise KeyError(
                f"no store with the alias {alias!r}; stores: {sorted(self._stores) or 'none'}"
            ) from None

    def lookup_executor(self, alias: str) -> Executor:
        """The executor added under ``alias``; ``KeyError`` naming the aliases there are."""
        _check_alias("executor", alias)
        try:
            return self._executors[alias]
        except KeyError:
            raise KeyError(
                f"no executor with the alias {alias!r}; executors: "
                f"{sorted(self._executors) or 'none'}"
            ) from None

    def create_trigger(self, trigger: Any, trigger_args: Mapping[str, Any]) -> Trigger:
        """A trigger from an instance, or from a plugin alias and its keyword arguments."""
        if trigger is None:
            trigger = "date"
        if isinstance(trigger, str):
            cls = self.plugins.resolve("trigger", trigger)
            args = dict(trigger_args)
            if (
                "timezone" not in args
                and not _is_aware(args.get("start_at"))
                and not _is_aware(args.get("end_at"))
                and _accepts(cls, "timezone")
            ):
                # An aware start or end time gives the trigger its zone (as in Asyncz).
                args["timezone"] = self.timezone
            return cls(**args)  # type: ignore[no-any-return]
        if trigger_args:
            raise TypeError(
                f"trigger arguments {sorted(trigger_args)} were given with a trigger instance "
                f"{trigger!r}; pass a trigger alias such as 'interval' to use them"
            )
        # Duck-typed: a trigger class of Asyncz's kind need not declare an alias.
        if not callable(getattr(trigger, "get_next_trigger_time", None)):
            raise TypeError(
                f"Expected a trigger instance or string, got {type(trigger).__name__!r} instead."
            )
        return trigger  # type: ignore[no-any-return]

    # -- events ----------------------------------------------------------------------------

    def add_listener(self, callback: Callable[[Any], Any], mask: int = events.ALL_EVENTS) -> None:
        """Call ``callback(event)`` for every event whose code is in ``mask``."""
        if not callable(callback):
            raise TypeError(f"a listener must be callable, got {callback!r}")
        if isinstance(mask, bool) or not isinstance(mask, int) or mask <= 0:
            raise ValueError(f"mask must be a positive int of event codes, got {mask!r}")
        with self._lock:
            self._listeners.append((callback, mask))
            self._listener_mask |= mask

    def remove_listener(self, callback: Callable[[Any], Any]) -> bool:
        with self._lock:
            kept = [(cb, mask) for cb, mask in self._listeners if cb != callback]
            removed = len(kept) != len(self._listeners)
            self._listeners = kept
            self._refresh_listener_mask()
        return removed

    def _refresh_listener_mask(self) -> None:
        """The codes anybody wants: the listeners', and the run recorder's while it runs."""
        mask = 0
        for _, wanted in self._listeners:
            mask |= wanted
        if getattr(self, "_run_recorder", None) is not None:
            mask |= OUTCOME_CODES
        self._listener_mask = mask

    def wants_event(self, code: int) -> bool:
        """Whether any listener listens for ``code`` (saves building unwanted events)."""
        return bool(self._listener_mask & code)

    def dispatch_event(self, event: events.SchedulerEvent) -> None:
        """Call the listeners for ``event``; a failing listener is logged, never propagated.

        A task event made without the scheduler's identity gets it here."""
        if getattr(event, "scheduler_identity", False) is None:
            object.__setattr__(event, "scheduler_identity", self.identity)
        recorder = getattr(self, "_run_recorder", None)
        if recorder is not None and event.code & OUTCOME_CODES:
            recorder.record_event(event)
        for callback, mask in self._listeners:
            if event.code & mask:
                try:
                    callback(event)
                except Exception:
                    self.logger.exception("Error notifying listener %r of %r", callback, event)

    _dispatch = dispatch_event

    def _task_event(self, code: int, task_id: str, store: str | None) -> None:
        if self._listener_mask & code:
            self.dispatch_event(
                events.TaskEvent(
                    code=code,
                    alias=store,
                    task_id=task_id,
                    store=store,
                    scheduler_identity=self.identity,
                )
            )

    def _submission_event(
        self,
        code: int,
        task: Task,
        store: str,
        run_times: list[datetime],
        coalesced: int,
        source: str,
    ) -> None:
        if self._listener_mask & code:
            self.dispatch_event(
                events.TaskSubmissionEvent(
                    code=code,
                    alias=store,
                    task_id=task.id,
                    store=store,
                    scheduler_identity=self.identity,
                    scheduled_run_times=list(run_times),
                    source=source,
                    coalesced_run_count=coalesced,
                )
            )


def _is_aware(value: Any) -> bool:
    return isinstance(value, datetime) and value.tzinfo is not None


@functools.lru_cache(maxsize=256)
def _accepts(cls: type, parameter: str) -> bool:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return False
    # Only a named parameter counts: triggers take **unknown just to reject typos.
    return parameter in signature.parameters

"""``--bootstrap module:object``: the application's own scheduler, for the commands to use.

The object may be a scheduler, a class or an object with ``get_scheduler()``, or a callable
returning a scheduler. Loaded schedulers are kept per reference for the life of the process,
so commands run one after another in one process (tests, a shell built on the commands) see
the same scheduler, as its memory store requires; :func:`clear_bootstrap_cache` shuts down the
ones the commands started and forgets them all.
"""

from __future__ import annotations

import importlib
import sys
import threading
from typing import Any

from asyncz.cli.utils import EXIT_USAGE, CliError

__all__ = ["clear_bootstrap_cache", "load_bootstrap", "started_by_cli"]

_cache: dict[str, Any] = {}
#: ids of the cached schedulers that a command started (and so shuts down when cleared)
_started: set[int] = set()
_lock = threading.Lock()


def _is_scheduler(value: Any) -> bool:
    from asyncz.core.base_scheduler import BaseScheduler

    return isinstance(value, BaseScheduler)


def _import(reference: str) -> Any:
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise CliError(
            f"--bootstrap {reference!r}: write module:object, e.g. myapp.scheduling:AsynczSpec",
            EXIT_USAGE,
        )
    if "" not in sys.path and "." not in sys.path:
        # As `python -m` does: the application's modules are found from where it is run.
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError(
            f"--bootstrap {reference!r}: cannot import {module_name!r} ({exc})", EXIT_USAGE
        ) from exc
    value: Any = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise CliError(
                f"--bootstrap {reference!r}: {module_name!r} has no attribute {attribute!r}",
                EXIT_USAGE,
            ) from None
    return value


def _resolve(reference: str, value: Any) -> Any:
    if _is_scheduler(value):
        return value
    if isinstance(value, type):
        value = value()
    getter = getattr(value, "get_scheduler", None)
    if callable(getter):
        value = getter()
    elif callable(value) and not _is_scheduler(value):
        value = value()
    if not _is_scheduler(value):
        raise CliError(
            f"--bootstrap {reference!r} must give a scheduler: a scheduler, a class or object "
            f"with get_scheduler(), or a callable returning one; it gave {type(value).__name__}",
            EXIT_USAGE,
        )
    return value


def load_bootstrap(reference: str) -> Any:
    """The scheduler ``reference`` (``module:object``) stands for, loaded once per process."""
    with _lock:
        scheduler = _cache.get(reference)
        if scheduler is None:
            scheduler = _resolve(reference, _import(reference))
            _cache[reference] = scheduler
        return scheduler


def started_by_cli(scheduler: Any) -> None:
    """Note that a command started this cached scheduler (cleared schedulers are shut down)."""
    with _lock:
        _started.add(id(scheduler))


def is_cached(scheduler: Any) -> bool:
    with _lock:
        return any(cached is scheduler for cached in _cache.values())


def clear_bootstrap_cache() -> None:
    """Forget every loaded scheduler, shutting down those a command started."""
    with _lock:
        schedulers = list(_cache.values())
        started = set(_started)
        _cache.clear()
        _started.clear()
    for scheduler in schedulers:
        if id(scheduler) in started and scheduler.running:
            try:
                scheduler.shutdown(wait=False)
            except Exception:  # already stopped by its application
                pass

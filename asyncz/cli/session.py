"""The scheduler a command works through, and the errors it meets, said for people.

Standalone (``--store``): a scheduler of this process over the given stores, plus a memory
store aliased ``default`` unless one is given. It starts **paused**: it reads and writes the
stores, runs a task when ``run`` asks, but never fires due tasks on its own, so that
``asyncz list`` against a production store does not run what happens to be due there.
``status``, ``doctor`` and ``instances`` describe a running scheduler: they resume it when no
task in its stores is due within :data:`QUIET_SECONDS` (so it cannot fire one before the
command ends) and report it paused otherwise.

Bootstrap (``--bootstrap module:object``): the application's scheduler, started paused the same
way when it is not running yet (and kept for later commands of the same process).
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import click

from asyncz.cli.bootstrap_loader import is_cached, load_bootstrap, started_by_cli
from asyncz.cli.utils import (
    EXIT_DEPENDENCY,
    EXIT_FAILURE,
    EXIT_NOT_FOUND,
    EXIT_STORE,
    EXIT_USAGE,
    CliError,
    describe_store,
    installed,
    missing_dependency,
    parse_executor,
    parse_store,
    store_dependencies,
)

__all__ = ["QUIET_SECONDS", "Options", "guarded", "open_scheduler", "store_configs"]

#: status/doctor/instances resume their scheduler only when nothing is due this soon (seconds)
QUIET_SECONDS = 2.0

F = TypeVar("F", bound=Callable[..., Any])


class Options:
    """The options every operating command takes."""

    def __init__(
        self,
        stores: Sequence[str] = (),
        executors: Sequence[str] = (),
        bootstrap: str | None = None,
        json_output: bool = False,
        debug: bool = False,
    ) -> None:
        self.stores = tuple(stores)
        self.executors = tuple(executors)
        self.bootstrap = bootstrap
        self.json = json_output
        self.debug = debug or os.environ.get("ASYNCZ_DEBUG", "") not in ("", "0")

    @property
    def first_store(self) -> str | None:
        """The alias of the first ``--store`` (where ``add`` puts tasks by default)."""
        if self.bootstrap or not self.stores:
            return None
        return parse_store(self.stores[0])[0]


def store_configs(specs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--store`` values -> {alias: config}, each checked for its driver."""
    configs: dict[str, dict[str, Any]] = {}
    for spec in specs:
        alias, config = parse_store(spec)
        if alias in configs:
            raise CliError(f"--store alias {alias!r} is given twice", EXIT_USAGE)
        for module in store_dependencies(config):
            if not installed(module):
                raise missing_dependency(f"the store {alias!r} ({describe_store(config)})", module)
        configs[alias] = config
    return configs


def executor_configs(specs: Sequence[str]) -> dict[str, dict[str, Any]]:
    configs: dict[str, dict[str, Any]] = {}
    for spec in specs:
        alias, config = parse_executor(spec)
        configs[alias] = config
    return configs


def build_scheduler(options: Options, **overrides: Any) -> tuple[Any, dict[str, Any]]:
    """A stopped scheduler of this process with the ``--executor`` options, and the store
    configs of the ``--store`` options, for :func:`open_stores` once it has started (one by
    one, so that an error names its store)."""
    from asyncz.schedulers import AsyncIOScheduler

    stores = store_configs(options.stores)
    executors = executor_configs(options.executors)
    with translate("the scheduler's configuration"):
        scheduler = AsyncIOScheduler(executors=executors or None, **overrides)
    return scheduler, stores


def open_stores(scheduler: Any, stores: dict[str, dict[str, Any]]) -> None:
    """Add each store to the started scheduler, naming the one that fails."""
    for alias, config in stores.items():
        if alias == "default" and "default" in scheduler.stores:
            scheduler.remove_store("default")
        with translate(f"the store {alias!r} ({describe_store(config)})", store=True):
            scheduler.add_store(dict(config), alias)


def _quiet(scheduler: Any) -> bool:
    """No task in the scheduler's stores is due within QUIET_SECONDS."""
    horizon = datetime.now(timezone.utc) + timedelta(seconds=QUIET_SECONDS)
    for store in list(scheduler.stores.values()):
        soonest = store.get_next_run_time()
        if soonest is not None and soonest <= horizon:
            return False
    return True


@contextlib.contextmanager
def open_scheduler(options: Options, *, running: bool = False) -> Iterator[Any]:
    """The scheduler a command works through, started (paused) and shut down after.

    With ``running``, the scheduler is resumed when nothing is due soon (see the module's
    docstring); otherwise it stays paused.
    """
    from asyncz.core.scheduler_common import SchedulerState

    if options.bootstrap:
        if options.stores:
            click.echo(
                "asyncz: note: --store is ignored with --bootstrap (the application's "
                "scheduler has its own stores)",
                err=True,
            )
        scheduler = load_bootstrap(options.bootstrap)
        started = False
        if not scheduler.running:
            with translate("the bootstrap scheduler", store=True):
                scheduler.start(paused=True)
            started = True
            if is_cached(scheduler):
                started_by_cli(scheduler)
        resumed = False
        if running and scheduler.state == SchedulerState.PAUSED and _quiet(scheduler):
            scheduler.resume()
            resumed = True
        try:
            yield scheduler
        finally:
            if started and not is_cached(scheduler):
                scheduler.shutdown(wait=True)
            elif resumed and scheduler.running:
                scheduler.pause()  # a kept scheduler goes on not firing tasks
        return
    scheduler, stores = build_scheduler(options)
    with translate("the scheduler", store=True):
        scheduler.start(paused=True)
    try:
        open_stores(scheduler, stores)
        if running and _quiet(scheduler):
            scheduler.resume()
        yield scheduler
    finally:
        scheduler.shutdown(wait=True)


# -- errors ----------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _is_connection_error(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    modules = {cls.__module__.split(".")[0] for cls in type(exc).__mro__}
    if names & {"OperationalError", "InterfaceError", "ConnectionError", "TimeoutError"}:
        return True
    if isinstance(exc, OSError):
        return True
    return bool({"redis", "psycopg", "pymysql"} & modules) and "Error" in type(exc).__name__


@contextlib.contextmanager
def translate(context: str, *, store: bool = False) -> Iterator[None]:
    """Turn what people can fix into :class:`CliError` naming ``context``."""
    from asyncz.core.errors import PluginLoadError, UnknownAliasError

    try:
        yield
    except CliError:
        raise
    except ModuleNotFoundError as exc:
        raise missing_dependency(context, exc.name or "?") from exc
    except UnknownAliasError as exc:
        raise CliError(f"{context}: {_first_line(exc)}", EXIT_DEPENDENCY) from exc
    except PluginLoadError as exc:
        cause = exc.__cause__
        if isinstance(cause, ModuleNotFoundError) and cause.name:
            raise missing_dependency(context, cause.name) from exc
        raise CliError(f"{context}: {_first_line(exc)}", EXIT_DEPENDENCY) from exc
    except Exception as exc:
        if store and _is_connection_error(exc):
            raise CliError(f"cannot open {context}: {_first_line(exc)}", EXIT_STORE) from exc
        if isinstance(exc, (TypeError, ValueError)) and not isinstance(exc, KeyError):
            if type(exc).__name__ == "TasksFileError":  # it names its file itself
                raise CliError(_first_line(exc), EXIT_USAGE) from exc
            raise CliError(f"{context}: {_first_line(exc)}", EXIT_USAGE) from exc
        raise


def guarded(function: F) -> F:
    """Run a command's body, turning errors into one line on stderr and an exit code.

    With ``--debug`` (or ``ASYNCZ_DEBUG=1``) the traceback is printed as well.
    """
    import functools

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug")) or os.environ.get("ASYNCZ_DEBUG", "") not in ("", "0")
        try:
            return function(*args, **kwargs)
        except (click.exceptions.Exit, click.Abort, click.UsageError):
            raise
        except CliError as exc:
            if debug:
                traceback.print_exc(file=sys.stderr)
            raise exc from None
        except Exception as exc:
            if debug:
                traceback.print_exc(file=sys.stderr)
            raise _for_people(exc, debug) from None

    return wrapper  # type: ignore[return-value]


def _for_people(exc: Exception, debug: bool) -> CliError:
    from asyncz.core.errors import (
        ConflictIdError,
        MaximumInstancesError,
        TaskLookupError,
    )

    if isinstance(exc, TaskLookupError):
        return CliError(_first_line(exc).strip("'\""), EXIT_NOT_FOUND)
    if isinstance(exc, ConflictIdError):
        return CliError(_first_line(exc).strip("'\""), EXIT_USAGE)
    if isinstance(exc, KeyError):  # e.g. an executor or store alias the scheduler lacks
        return CliError(_first_line(exc).strip("'\""), EXIT_USAGE)
    if isinstance(exc, MaximumInstancesError):
        return CliError(_first_line(exc), EXIT_FAILURE)
    if _is_connection_error(exc):
        return CliError(f"a store could not be used: {_first_line(exc)}", EXIT_STORE)
    hint = "" if debug else " (run with --debug for the traceback)"
    return CliError(f"{type(exc).__name__}: {_first_line(exc)}{hint}", EXIT_FAILURE)

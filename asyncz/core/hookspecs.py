"""The hook specifications plugins implement.

A plugin is a module (or object) named by an entry point in the ``asyncz`` group::

    [project.entry-points.asyncz]
    my-trigger = "my_package.asyncz_plugin"

and implements one or more of these hooks with the :data:`asyncz.hookimpl` marker::

    import asyncz

    @asyncz.hookimpl
    def asyncz_register_triggers(register):
        register("every_weekday", "my_package.triggers:WeekdayTrigger")

``register(alias, target)`` takes the plugin alias users will write (``add_task(fn, "cron")``,
``{"type": "redis"}``) and either the class or a lazy ``"module:Class"`` string, which is
imported only when the alias is first used, so that a plugin with a heavy optional dependency
costs nothing until it is wanted. Every hook is called once per implementation, so the registry
knows which distribution registered which alias.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

__all__ = ["PROJECT_NAME", "Register", "hookimpl", "hookspec"]

PROJECT_NAME = "asyncz"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: The callback handed to registration hooks: ``register(alias, class_or_"module:Class")``.
Register = Callable[[str, Any], None]


@hookspec
def asyncz_register_triggers(register: Register) -> None:
    """Register trigger classes (``get_next_trigger_time``) under plugin aliases.

    .. versionadded:: 0.1
    """


@hookspec
def asyncz_register_stores(register: Register) -> None:
    """Register store classes under plugin aliases (the ``"type"`` of a store config).

    .. versionadded:: 0.1
    """


@hookspec
def asyncz_register_executors(register: Register) -> None:
    """Register executor classes under plugin aliases (the ``"type"`` of an executor config).

    .. versionadded:: 0.1
    """


@hookspec
def asyncz_register_serializers(register: Register) -> None:
    """Register serializers that persistent stores use to encode task records.

    .. versionadded:: 0.1
    """

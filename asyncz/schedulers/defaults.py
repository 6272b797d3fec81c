"""Asyncz's path ``asyncz.schedulers.defaults``: plugin alias -> ``"module:Class"`` dicts.

Asyncz keeps these dicts by hand; here they are read from the plugin registry (entry points), so
they list the built-in plugins and every installed third-party one. ``triggers``, ``executors``
and ``stores`` are computed on first access.
"""

from __future__ import annotations

from typing import Any

from asyncz.core.plugins import default_registry

__all__ = ["executors", "stores", "triggers"]  # noqa: F822 - computed by __getattr__

_KINDS = {"triggers": "trigger", "executors": "executor", "stores": "store"}


def _references(kind: str) -> dict[str, str]:
    references = {}
    for provider in default_registry().providers(kind):
        target = provider.target
        if not isinstance(target, str):
            target = f"{target.__module__}:{target.__qualname__}"
        references[provider.alias] = target
    return references


def __getattr__(name: str) -> Any:
    try:
        kind = _KINDS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = _references(kind)
    globals()[name] = value
    return value

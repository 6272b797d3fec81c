"""Turning Asyncz-style configuration into scheduler options.

``global_config`` comes in two styles, often read from an ini or YAML file, so values may be
strings: the flat style, with dotted keys under a prefix::

    {"asyncz.timezone": "UTC", "asyncz.task_defaults.coalesce": "false",
     "asyncz.stores.default.type": "memory"}

and the nested style, with a mapping under a prefixed key::

    {"asyncz.stores": {"default": {"type": "memory"}}, "asyncz.task_defaults": {...}}

Both are merged into one nested dict of options (keyword options given to the scheduler win).
String values of options whose type is known are coerced ("false" -> False, "9" -> 9); options of
store and executor plugins are coerced only when they look like a bool or an int, since their
types are the plugin's business.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["coerce_options", "parse_global_config"]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")


def parse_global_config(
    global_config: Mapping[str, Any], prefix: str = "asyncz."
) -> dict[str, Any]:
    """The options in ``global_config`` under ``prefix``, as one nested dict."""
    if not isinstance(global_config, Mapping):
        raise TypeError(f"global_config must be a mapping, got {type(global_config).__name__}")
    options: dict[str, Any] = {}
    for key, value in global_config.items():
        if not isinstance(key, str) or not key.startswith(prefix):
            continue
        path = key[len(prefix) :].split(".")
        if not all(path):
            raise ValueError(f"global_config key {key!r} has an empty part")
        target = options
        for part in path[:-1]:
            existing = target.setdefault(part, {})
            if not isinstance(existing, dict):
                raise ValueError(
                    f"global_config key {key!r} conflicts with a value set for {part!r}"
                )
            target = existing
        leaf = path[-1]
        if isinstance(value, Mapping) and isinstance(target.get(leaf), dict):
            _merge(target[leaf], value)
        else:
            target[leaf] = _plain(value)
    return options


def _plain(value: Any) -> Any:
    return {k: _plain(v) for k, v in value.items()} if isinstance(value, Mapping) else value


def _merge(into: dict[str, Any], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = _plain(value)


def merge_options(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated recursively with ``override`` (the caller's keyword options)."""
    merged: dict[str, Any] = _plain(base)
    _merge(merged, override)
    return merged


def _to_bool(name: str, value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"{name}={value!r} is not a boolean; use true or false")
    return value


def _to_number(name: str, value: Any, *, integer: bool = False) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("none", "null", ""):
            return None
        if integer and _INT.match(text):
            return int(text)
        if not integer and _FLOAT.match(text):
            return float(text)
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name}={value!r} is not {kind}")
    return value


def _loose(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if _INT.match(value.strip()):
            return int(value)
    return value


def coerce_options(options: dict[str, Any]) -> dict[str, Any]:
    """Coerce string values of options read from configuration files (see the module doc)."""
    result = dict(options)
    for name in (
        "startup_delay",
        "store_retry_interval",
        "heartbeat_stale_after",
        "heartbeat_interval",
        "heartbeat_dead_after",
    ):
        if name in result:
            result[name] = _to_number(name, result[name])
    if "isolated_event_loop" in result:
        result["isolated_event_loop"] = _to_bool(
            "isolated_event_loop", result["isolated_event_loop"]
        )
    defaults = result.get("task_defaults")
    if isinstance(defaults, Mapping):
        defaults = dict(defaults)
        if "coalesce" in defaults:
            defaults["coalesce"] = _to_bool("task_defaults.coalesce", defaults["coalesce"])
        if "max_instances" in defaults:
            defaults["max_instances"] = _to_number(
                "task_defaults.max_instances", defaults["max_instances"], integer=True
            )
        for name in ("mistrigger_grace_time", "timeout"):
            if name in defaults:
                defaults[name] = _to_number(f"task_defaults.{name}", defaults[name])
        result["task_defaults"] = defaults
    for kind in ("stores", "executors"):
        specs = result.get(kind)
        if isinstance(specs, Mapping):
            result[kind] = {
                alias: {k: (v if k in ("type", "class") else _loose(v)) for k, v in spec.items()}
                if isinstance(spec, Mapping)
                else spec
                for alias, spec in specs.items()
            }
    return result

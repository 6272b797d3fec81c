"""The ``json`` serializer: readable records that are safe to load from any source.

Task arguments must be JSON types (str, int, float, bool, None, lists, dicts with string keys);
tuples come back as lists. Anything else is refused when the task is added, not when it is loaded.
"""

from __future__ import annotations

import json
import math
from typing import Any

from asyncz.core.errors import SerializationError
from asyncz.core.hookspecs import hookimpl

__all__ = ["JSONSerializer"]


class JSONSerializer:
    """Encodes records as compact UTF-8 JSON."""

    def dumps(self, state: dict[str, Any]) -> bytes:
        try:
            _check(state, "record")
            text = json.dumps(state, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise SerializationError(
                f"the task cannot be stored as JSON: {exc}. The json serializer keeps only "
                "str, int, float, bool, None, lists and dicts with string keys; convert the "
                "arguments (e.g. a datetime to an ISO string) or use the pickle serializer"
            ) from None
        return text.encode("utf-8")

    def loads(self, data: bytes) -> dict[str, Any]:
        state = json.loads(data.decode("utf-8"))
        if not isinstance(state, dict):
            raise ValueError(f"JSON data is a {type(state).__name__}, not a task record")
        return state

    def __repr__(self) -> str:
        return "JSONSerializer()"


def _check(value: Any, where: str) -> None:
    """Refuse what json.dumps would silently change (non-str keys, NaN) or cannot encode."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value!r}, which JSON cannot represent")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has the non-string key {key!r}")
            _check(item, f"{where}[{key!r}]")
        return
    raise TypeError(f"{where} is a {type(value).__name__} ({value!r})")


@hookimpl
def asyncz_register_serializers(register: Any) -> None:
    register("json", JSONSerializer)

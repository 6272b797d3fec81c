"""Asyncz's path ``asyncz.typing``: the marker for an argument that was not given."""

from typing import Any

from asyncz.core.scheduler import undefined

#: The type of :data:`undefined` (``isinstance(value, Undefined)``).
Undefined = type(undefined)
UndefinedType = Undefined

__all__ = ["Any", "Undefined", "UndefinedType", "undefined"]

"""The Shape registry: names -> Shape classes, one per process.

Registration is explicit and deterministic: a name taken is refused unless ``replace=True``, so
the order modules are imported in never changes which Shape a name means.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import ClassVar, TypeVar

from asyncz.shapes.base import Shape
from asyncz.shapes.errors import ShapeNotFoundError, ShapeRegistrationError, ShapeTypeError

__all__ = ["DEFAULT_SHAPE", "ShapeRegistry", "register_shape", "resolve_shape", "shapes"]

#: The Shape used when none is chosen (Asyncz's default).
DEFAULT_SHAPE = "pydantic"

ShapeT = TypeVar("ShapeT", bound=type[Shape])


class ShapeRegistry:
    """Registered Shapes by name. Every method is a class method: ``ShapeRegistry.get(...)``
    and the instance :data:`shapes` (``shapes.get(...)``) see the same registry."""

    _shapes: ClassVar[dict[str, type[Shape]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def register(cls, name: str, shape: type[Shape], *, replace: bool = False) -> type[Shape]:
        """Register the Shape class ``shape`` under ``name`` and return it."""
        if not isinstance(name, str) or not name.strip():
            raise ShapeRegistrationError(f"a Shape name must be a non-empty string, got {name!r}")
        if not (isinstance(shape, type) and issubclass(shape, Shape)):
            raise ShapeRegistrationError(
                f"only subclasses of asyncz.shapes.Shape can be registered, got {shape!r} for "
                f"{name!r}"
            )
        with cls._lock:
            taken = cls._shapes.get(name)
            if taken is not None and taken is not shape and not replace:
                raise ShapeRegistrationError(
                    f"the Shape name {name!r} is already registered to {taken.__qualname__}; "
                    "pass replace=True to replace it"
                )
            if taken is shape and not replace:
                raise ShapeRegistrationError(
                    f"{shape.__qualname__} is already registered under {name!r}"
                )
            cls._shapes[name] = shape
        return shape

    @classmethod
    def unregister(cls, name: str) -> None:
        """Remove the Shape registered under ``name``; ShapeNotFoundError if there is none."""
        with cls._lock:
            if cls._shapes.pop(name, None) is None:
                raise ShapeNotFoundError(name, cls._shapes)

    @classmethod
    def get_class(cls, name: str) -> type[Shape]:
        """The Shape class registered under ``name``."""
        try:
            return cls._shapes[name]
        except (KeyError, TypeError):
            raise ShapeNotFoundError(name, list(cls._shapes)) from None

    @classmethod
    def get(cls, name: str) -> Shape:
        """A new instance of the Shape registered under ``name``; ShapeNotFoundError if none
        is, ShapeDependencyError if its optional library is not installed."""
        shape_class = cls.get_class(name)
        shape_class.require()
        return shape_class()

    @classmethod
    def available(cls) -> tuple[str, ...]:
        """Every registered name, sorted."""
        return tuple(sorted(cls._shapes))

    @classmethod
    def resolve(cls, shape: str | type[Shape] | Shape | None = None) -> Shape:
        """The Shape a scheduler's ``shape`` option names: a registered name, a Shape class
        (instantiated) or a Shape instance (returned as it is); ``None`` is the default, a
        :class:`~asyncz.shapes.PydanticShape` that needs pydantic only for pydantic models."""
        if shape is None:
            return cls.get_class(DEFAULT_SHAPE)()
        if isinstance(shape, Shape):
            type(shape).require()
            return shape
        if isinstance(shape, str):
            return cls.get(shape)
        if isinstance(shape, type) and issubclass(shape, Shape):
            shape.require()
            return shape()
        raise ShapeTypeError(
            "shape must be a registered Shape name, a Shape class, a Shape instance or None, "
            f"got {shape!r}; registered names: {', '.join(map(repr, cls.available()))}"
        )


#: The registry (an instance, for Asyncz's ``shapes.get(...)`` spelling).
shapes = ShapeRegistry()


def resolve_shape(shape: str | type[Shape] | Shape | None = None) -> Shape:
    """:meth:`ShapeRegistry.resolve`."""
    return ShapeRegistry.resolve(shape)


def register_shape(name: str, *, replace: bool = False) -> Callable[[ShapeT], ShapeT]:
    """Class decorator: register the decorated Shape class under ``name``, return it as is."""

    def decorator(shape: ShapeT) -> ShapeT:
        ShapeRegistry.register(name, shape, replace=replace)
        return shape

    return decorator

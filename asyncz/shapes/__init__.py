"""Asyncz's Shapes: how scheduler-facing values (``task_defaults``, configuration) are
validated, built, dumped and inspected, independent of any one validation library.

``from asyncz.shapes import DataclassShape``; a scheduler takes ``shape=`` as a registered name
(``"pydantic"`` — the default —, ``"dataclass"``, ``"attrs"``, ``"msgspec"``, ``"any"``), a Shape
class or an instance. Shapes never change how tasks are scheduled.
"""

from __future__ import annotations

from asyncz.shapes.base import Shape, ShapeContext, ShapeField, to_plain
from asyncz.shapes.builtins import (
    AnyShape,
    AttrsShape,
    DataclassShape,
    MsgspecShape,
    PydanticShape,
)
from asyncz.shapes.errors import (
    ShapeCapabilityError,
    ShapeCompatibilityError,
    ShapeDependencyError,
    ShapeDeserializationError,
    ShapeError,
    ShapeMigrationError,
    ShapeNotFoundError,
    ShapeRegistrationError,
    ShapeSerializationError,
    ShapeTypeError,
    ShapeValidationError,
)
from asyncz.shapes.registry import (
    DEFAULT_SHAPE,
    ShapeRegistry,
    register_shape,
    resolve_shape,
    shapes,
)

for _shape in (PydanticShape, DataclassShape, AttrsShape, MsgspecShape, AnyShape):
    ShapeRegistry.register(_shape.name, _shape, replace=True)
del _shape

__all__ = [
    "DEFAULT_SHAPE",
    "AnyShape",
    "AttrsShape",
    "DataclassShape",
    "MsgspecShape",
    "PydanticShape",
    "Shape",
    "ShapeCapabilityError",
    "ShapeCompatibilityError",
    "ShapeContext",
    "ShapeDependencyError",
    "ShapeDeserializationError",
    "ShapeError",
    "ShapeField",
    "ShapeMigrationError",
    "ShapeNotFoundError",
    "ShapeRegistrationError",
    "ShapeRegistry",
    "ShapeSerializationError",
    "ShapeTypeError",
    "ShapeValidationError",
    "register_shape",
    "resolve_shape",
    "shapes",
    "to_plain",
]

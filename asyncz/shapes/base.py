"""The Shape contract: how scheduler-facing values are validated, built, dumped and inspected.

A Shape owns representation only. It never decides anything about scheduling: triggers compute
run times, stores keep tasks, the scheduler owns the rest. The base class works for plain Python
values (mappings, dataclasses, attrs classes, msgspec Structs, objects with ``model_dump()``); a
Shape for a validation library overrides what that library does better.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from asyncz.shapes.errors import (
    ShapeCapabilityError,
    ShapeDependencyError,
    ShapeDeserializationError,
    ShapeSerializationError,
    ShapeValidationError,
)

__all__ = ["Shape", "ShapeContext", "ShapeField", "to_plain"]


@dataclasses.dataclass(frozen=True)
class ShapeContext:
    """What a Shape operation is about, for messages and Shapes that care (never scheduler
    internals).

    :param entity: what is represented (``"task_defaults"``, ``"task_state"``, ...)
    :param operation: what is being done (``"configure"``, ``"dump"``, ``"restore"``, ...)
    """

    entity: str
    operation: str
    scheduler_identity: str | None = None
    strict: bool | None = None
    schema_version: int | None = None
    mode: str | None = None


@dataclasses.dataclass(frozen=True)
class ShapeField:
    """One field of a model, as :meth:`Shape.fields` reports it.

    ``default`` is ``None`` for a required field and for one whose default comes from a factory
    (which is not called just to describe the field).
    """

    name: str
    annotation: Any = Any
    default: Any = None
    required: bool = True


def _struct_fields(value: Any) -> tuple[str, ...] | None:
    """The field names of a msgspec Struct instance (None for anything else), without
    importing msgspec: a Struct exists only if msgspec was imported already."""
    if "msgspec" not in sys.modules:
        return None
    names = getattr(type(value), "__struct_fields__", None)
    return names if isinstance(names, tuple) else None


def to_plain(value: Any, *, exclude_none: bool = False) -> Any:
    """``value`` as plain data: models (objects with ``model_dump()``, dataclass, attrs and
    msgspec instances) and mappings become dicts, lists and tuples are converted item by item;
    anything else is returned as it is."""
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump(exclude_none=exclude_none)
    if isinstance(value, Mapping):
        items: Any = value.items()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    elif attrs.has(type(value)):
        items = ((f.name, getattr(value, f.name)) for f in attrs.fields(type(value)))
    elif (names := _struct_fields(value)) is not None:
        items = ((name, getattr(value, name)) for name in names)
    elif isinstance(value, (list, tuple)):
        converted = [to_plain(item, exclude_none=exclude_none) for item in value]
        return converted if isinstance(value, list) else tuple(converted)
    else:
        return value
    return {
        key: to_plain(item, exclude_none=exclude_none)
        for key, item in items
        if not (exclude_none and item is None)
    }


def _type_name(model_type: Any) -> str:
    return getattr(model_type, "__qualname__", None) or repr(model_type)


class Shape:
    """Base class of Shapes; subclass it and override what your representation needs.

    ``name`` is the name the Shape is registered and recorded under. ``requires`` is
    ``(module, extra)`` for a Shape built on an optional library: selecting the Shape without it
    installed raises :class:`ShapeDependencyError` naming the extra. Shapes must be stateless or
    safe to share between threads.
    """

    name: ClassVar[str] = "shape"
    version: ClassVar[int] = 1
    requires: ClassVar[tuple[str, str] | None] = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"

    # -- dependencies ----------------------------------------------------------------------

    @classmethod
    def available(cls) -> bool:
        """Whether the optional library this Shape needs is installed (True if none)."""
        if cls.requires is None:
            return True
        module = cls.requires[0]
        return module in sys.modules or importlib.util.find_spec(module) is not None

    @classmethod
    def require(cls) -> None:
        """Raise :class:`ShapeDependencyError` unless :meth:`available`."""
        if not cls.available():
            assert cls.requires is not None
            module, extra = cls.requires
            raise ShapeDependencyError(cls.name, module, extra)

    def _import(self) -> Any:
        """The optional library (``requires``), imported; ShapeDependencyError if missing."""
        assert self.requires is not None
        module, extra = self.requires
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            raise ShapeDependencyError(self.name, module, extra) from exc

    # -- the contract ----------------------------------------------------------------------

    def supports(self, value_or_type: Any) -> bool:
        """Whether this Shape knows how to handle the value or model type."""
        return False

    def validate(
        self, model_type: type[Any], value: Any, *, context: ShapeContext | None = None
    ) -> Any:
        """``value`` checked against ``model_type`` (by default: :meth:`construct`)."""
        return self.construct(model_type, value, context=context)

    def construct(
        self, model_type: type[Any], values: Any, *, context: ShapeContext | None = None
    ) -> Any:
        """An instance of ``model_type``: ``values`` itself if it is one, else built from the
        mapping ``values``; :class:`ShapeValidationError` naming the model and the values."""
        if isinstance(model_type, type) and isinstance(values, model_type):
            return values
        if not isinstance(values, Mapping):
            raise ShapeValidationError(
                f"{self._where(context)}: {_type_name(model_type)} is built from a mapping or is "
                f"given as an instance, got {values!r}"
            )
        try:
            return model_type(**values)
        except Exception as exc:
            raise ShapeValidationError(
                f"{self._where(context)}: {_type_name(model_type)} cannot be built from "
                f"{dict(values)!r}: {exc}"
            ) from exc

    def dump(
        self,
        value: Any,
        *,
        mode: str | None = None,
        context: ShapeContext | None = None,
        exclude_none: bool = False,
    ) -> Any:
        """``value`` as plain data (see :func:`to_plain`); ``mode`` is for Shapes that know
        several (``"python"``, ``"json"``)."""
        try:
            return to_plain(value, exclude_none=exclude_none)
        except Exception as exc:
            raise ShapeSerializationError(
                f"{self._where(context)} cannot dump {value!r}: {exc}"
            ) from exc

    def dump_mapping(
        self, value: Any, *, context: ShapeContext | None = None, exclude_none: bool = False
    ) -> dict[str, Any]:
        """:meth:`dump` for a value that must come out as a mapping with string keys (a
        configuration object such as ``task_defaults``); ShapeSerializationError otherwise."""
        data = self.dump(value, context=context, exclude_none=exclude_none)
        if not isinstance(data, Mapping) or not all(isinstance(key, str) for key in data):
            raise ShapeSerializationError(
                f"{self._where(context)} expects a mapping or a model instance (dataclass, attrs, "
                f"msgspec, pydantic), got {value!r}"
            )
        return dict(data)

    def load(
        self, model_type: type[Any], value: Any, *, context: ShapeContext | None = None
    ) -> Any:
        """Rebuild a ``model_type`` from what :meth:`dump` gave."""
        try:
            return self.construct(model_type, value, context=context)
        except ShapeValidationError as exc:
            raise ShapeDeserializationError(str(exc)) from exc

    def fields(
        self, model_type: type[Any], *, context: ShapeContext | None = None
    ) -> tuple[ShapeField, ...]:
        """The fields of ``model_type``, in declaration order."""
        raise ShapeCapabilityError(
            f"the {self.name!r} Shape cannot inspect the fields of {_type_name(model_type)}"
        )

    def schema(self, model_type: type[Any], *, context: ShapeContext | None = None) -> Any:
        """A JSON schema of ``model_type``, for Shapes that can produce one."""
        raise ShapeCapabilityError(
            f"the {self.name!r} Shape cannot produce a schema of {_type_name(model_type)}"
        )

    def _where(self, context: ShapeContext | None) -> str:
        where = f"the {self.name!r} Shape"
        if context is not None:
            where += f" ({context.operation} {context.entity})"
        return where

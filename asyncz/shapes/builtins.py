"""The built-in Shapes: ``pydantic`` (the default), ``dataclass``, ``attrs``, ``msgspec``, ``any``.

``pydantic`` and ``msgspec`` are optional (``pip install 'asyncz[pydantic]'``,
``'asyncz[msgspec]'``) and imported only when a value of theirs is handled. The default Shape is
a :class:`PydanticShape` that works without pydantic for plain values; selecting a Shape by name,
class or instance whose library is missing raises :class:`ShapeDependencyError`.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Mapping
from typing import Any

import attrs

from asyncz.shapes.base import Shape, ShapeContext, ShapeField, _type_name, to_plain
from asyncz.shapes.errors import (
    ShapeCapabilityError,
    ShapeSerializationError,
    ShapeValidationError,
)

__all__ = ["AnyShape", "AttrsShape", "DataclassShape", "MsgspecShape", "PydanticShape"]


def _as_type(value_or_type: Any) -> type:
    return value_or_type if isinstance(value_or_type, type) else type(value_or_type)


class PydanticShape(Shape):
    """Pydantic models (v2): ``model_validate``, ``model_dump``, ``model_fields``,
    ``model_json_schema``; anything else as the base :class:`Shape` handles it."""

    name = "pydantic"
    requires = ("pydantic", "pydantic")

    def supports(self, value_or_type: Any) -> bool:
        # A pydantic model exists only once pydantic was imported: no import needed to say no.
        pydantic = sys.modules.get("pydantic")
        if pydantic is None:
            return False
        return issubclass(_as_type(value_or_type), pydantic.BaseModel)

    def construct(
        self, model_type: type[Any], values: Any, *, context: ShapeContext | None = None
    ) -> Any:
        if not self.supports(model_type):
            return super().construct(model_type, values, context=context)
        if isinstance(values, model_type):
            return values
        try:
            return model_type.model_validate(values)
        except Exception as exc:
            raise ShapeValidationError(
                f"{self._where(context)}: {values!r} is not a valid {_type_name(model_type)}: {exc}"
            ) from exc

    def dump(
        self,
        value: Any,
        *,
        mode: str | None = None,
        context: ShapeContext | None = None,
        exclude_none: bool = False,
    ) -> Any:
        if not self.supports(value) or isinstance(value, type):
            return super().dump(value, mode=mode, context=context, exclude_none=exclude_none)
        try:
            return value.model_dump(mode=mode or "python", exclude_none=exclude_none)
        except Exception as exc:
            raise ShapeSerializationError(
                f"{self._where(context)} cannot dump {value!r}: {exc}"
            ) from exc

    def fields(
        self, model_type: type[Any], *, context: ShapeContext | None = None
    ) -> tuple[ShapeField, ...]:
        if not self.supports(model_type):
            return super().fields(model_type, context=context)
        found = []
        for name, info in model_type.model_fields.items():
            required = bool(info.is_required())
            default = None if required or info.default_factory is not None else info.default
            found.append(ShapeField(name, info.annotation, default, required))
        return tuple(found)

    def schema(self, model_type: type[Any], *, context: ShapeContext | None = None) -> Any:
        if not self.supports(model_type):
            return super().schema(model_type, context=context)
        return model_type.model_json_schema()


class DataclassShape(Shape):
    """Standard-library dataclasses: construction and field inspection (dataclasses do not
    validate field types; use ``__post_init__`` for checks)."""

    name = "dataclass"

    def supports(self, value_or_type: Any) -> bool:
        return dataclasses.is_dataclass(value_or_type)

    def fields(
        self, model_type: type[Any], *, context: ShapeContext | None = None
    ) -> tuple[ShapeField, ...]:
        if not (isinstance(model_type, type) and dataclasses.is_dataclass(model_type)):
            return super().fields(model_type, context=context)
        try:
            hints = typing.get_type_hints(model_type)
        except Exception:  # an annotation that does not resolve: report it unevaluated
            hints = {}
        found = []
        for field in dataclasses.fields(model_type):
            has_default = field.default is not dataclasses.MISSING
            required = not has_default and field.default_factory is dataclasses.MISSING
            default = field.default if has_default else None
            found.append(
                ShapeField(field.name, hints.get(field.name, field.type), default, required)
            )
        return tuple(found)


class AttrsShape(Shape):
    """attrs classes: construction runs their converters and validators; fields come from
    ``attrs.fields`` (attrs is one of asyncz's own dependencies)."""

    name = "attrs"

    def supports(self, value_or_type: Any) -> bool:
        return attrs.has(_as_type(value_or_type))

    def fields(
        self, model_type: type[Any], *, context: ShapeContext | None = None
    ) -> tuple[ShapeField, ...]:
        if not (isinstance(model_type, type) and attrs.has(model_type)):
            return super().fields(model_type, context=context)
        try:
            hints = typing.get_type_hints(model_type)
        except Exception:
            hints = {}
        found = []
        for field in attrs.fields(model_type):
            default = field.default
            required = default is attrs.NOTHING
            if required or isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                default = None
            annotation = hints.get(field.name, field.type if field.type is not None else Any)
            found.append(ShapeField(field.name, annotation, default, required))
        return tuple(found)


class MsgspecShape(Shape):
    """msgspec Structs: ``msgspec.convert`` (validating, with msgspec's error paths),
    ``msgspec.to_builtins``, Struct fields and JSON schemas."""

    name = "msgspec"
    requires = ("msgspec", "msgspec")

    def supports(self, value_or_type: Any) -> bool:
        msgspec = sys.modules.get("msgspec")
        if msgspec is None:
            return False
        return issubclass(_as_type(value_or_type), msgspec.Struct)

    def construct(
        self, model_type: type[Any], values: Any, *, context: ShapeContext | None = None
    ) -> Any:
        msgspec = self._import()
        if not self.supports(model_type):
            return super().construct(model_type, values, context=context)
        if isinstance(values, model_type):
            return values
        try:
            return msgspec.convert(values, type=model_type)
        except Exception as exc:
            raise ShapeValidationError(
                f"{self._where(context)}: {values!r} is not a valid {_type_name(model_type)}: {exc}"
            ) from exc

    def dump(
        self,
        value: Any,
        *,
        mode: str | None = None,
        context: ShapeContext | None = None,
        exclude_none: bool = False,
    ) -> Any:
        msgspec = self._import()
        if not self.supports(value) or isinstance(value, type):
            return super().dump(value, mode=mode, context=context, exclude_none=exclude_none)
        try:
            data = msgspec.to_builtins(value)
        except Exception as exc:
            raise ShapeSerializationError(
                f"{self._where(context)} cannot dump {value!r}: {exc}"
            ) from exc
        if exclude_none and isinstance(data, dict):
            data = {key: item for key, item in data.items() if item is not None}
        return data

    def fields(
        self, model_type: type[Any], *, context: ShapeContext | None = None
    ) -> tuple[ShapeField, ...]:
        msgspec = self._import()
        if not self.supports(model_type):
            return super().fields(model_type, context=context)
        found = []
        for field in msgspec.structs.fields(model_type):
            default = None if field.default is msgspec.NODEFAULT else field.default
            found.append(ShapeField(field.name, field.type, default, field.required))
        return tuple(found)

    def schema(self, model_type: type[Any], *, context: ShapeContext | None = None) -> Any:
        msgspec = self._import()
        if not self.supports(model_type):
            return super().schema(model_type, context=context)
        return msgspec.json.schema(model_type)


class AnyShape(Shape):
    """Permissive Shape for trusted values: whatever is given is taken (a single value is
    passed to the model's constructor), nothing is validated, no schemas. Never use it for
    untrusted input."""

    name = "any"

    def supports(self, value_or_type: Any) -> bool:
        return True

    def construct(
        self, model_type: type[Any], values: Any, *, context: ShapeContext | None = None
    ) -> Any:
        if model_type is Any or model_type is object:
            return values
        if isinstance(model_type, type) and isinstance(values, model_type):
            return values
        try:
            if isinstance(values, Mapping):
                return model_type(**values)
            return model_type(values)
        except Exception as exc:
            raise ShapeValidationError(
                f"{self._where(context)}: {_type_name(model_type)} cannot be built from "
                f"{values!r}: {exc}"
            ) from exc

    def dump(
        self,
        value: Any,
        *,
        mode: str | None = None,
        context: ShapeContext | None = None,
        exclude_none: bool = False,
    ) -> Any:
        data = to_plain(value, exclude_none=exclude_none)
        if data is value and not isinstance(value, (str, bytes, int, float, bool, type(None))):
            public = getattr(value, "__dict__", None)  # a plain object: its public attributes
            if isinstance(public, dict):
                return {
                    key: to_plain(item, exclude_none=exclude_none)
                    for key, item in public.items()
                    if not key.startswith("_") and not (exclude_none and item is None)
                }
        return data

    def schema(self, model_type: type[Any], *, context: ShapeContext | None = None) -> Any:
        raise ShapeCapabilityError("the 'any' Shape deliberately produces no schemas")

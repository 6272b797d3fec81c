"""asyncz.shapes: Asyncz's Shape API (registry, built-in Shapes, errors) as asyncz offers it."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from typing import Any

import attrs
import pytest

from asyncz.exceptions import AsynczException
from asyncz.shapes import (
    AnyShape,
    AttrsShape,
    DataclassShape,
    MsgspecShape,
    PydanticShape,
    Shape,
    ShapeCapabilityError,
    ShapeContext,
    ShapeDependencyError,
    ShapeError,
    ShapeField,
    ShapeNotFoundError,
    ShapeRegistrationError,
    ShapeRegistry,
    ShapeTypeError,
    ShapeValidationError,
    register_shape,
    resolve_shape,
    shapes,
)

CTX = ShapeContext(entity="task_defaults", operation="configure")


@dataclasses.dataclass
class DC:
    grace: float = 5
    coalesce: bool = False
    tags: list[str] = dataclasses.field(default_factory=list)


@attrs.define
class AT:
    limit: int = attrs.field(converter=int)
    name: str = "x"


def test_builtin_names_and_default() -> None:
    assert {"any", "attrs", "dataclass", "msgspec", "pydantic"} <= set(shapes.available())
    default = resolve_shape()
    assert isinstance(default, PydanticShape) and default.name == "pydantic"
    assert isinstance(resolve_shape("dataclass"), DataclassShape)
    assert isinstance(resolve_shape(AttrsShape), AttrsShape)
    given = AnyShape()
    assert resolve_shape(given) is given


def test_unknown_names_suggest_the_closest_and_list_all() -> None:
    with pytest.raises(ShapeNotFoundError) as info:
        resolve_shape("dataclas")
    message = str(info.value)
    assert "'dataclas'" in message and "did you mean 'dataclass'" in message
    assert "'pydantic'" in message
    assert isinstance(info.value, LookupError) and isinstance(info.value, AsynczException)


def test_bad_specs_are_type_errors() -> None:
    with pytest.raises(ShapeTypeError, match="42") as info:
        resolve_shape(42)  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError) and isinstance(info.value, ShapeError)


def test_registration_is_explicit() -> None:
    @register_shape("compat-test-shape")
    class Mine(AnyShape):
        name = "compat-test-shape"

    try:
        assert isinstance(ShapeRegistry.get("compat-test-shape"), Mine)
        with pytest.raises(ShapeRegistrationError, match="already registered"):
            ShapeRegistry.register("compat-test-shape", AnyShape)
        ShapeRegistry.register("compat-test-shape", AnyShape, replace=True)
        assert type(shapes.get("compat-test-shape")) is AnyShape
        with pytest.raises(ShapeRegistrationError, match="subclasses"):
            ShapeRegistry.register("other", object)  # type: ignore[arg-type]
        with pytest.raises(ShapeRegistrationError, match="non-empty"):
            ShapeRegistry.register("", AnyShape)
    finally:
        ShapeRegistry.unregister("compat-test-shape")
    with pytest.raises(ShapeNotFoundError):
        ShapeRegistry.unregister("compat-test-shape")


def test_dataclass_shape() -> None:
    shape = DataclassShape()
    value = shape.construct(DC, {"grace": 2}, context=CTX)
    assert value == DC(2, False, [])
    assert shape.construct(DC, value) is value
    assert shape.dump(value, context=CTX) == {"grace": 2, "coalesce": False, "tags": []}
    assert shape.fields(DC) == (
        ShapeField("grace", float, 5, False),
        ShapeField("coalesce", bool, False, False),
        ShapeField("tags", list[str], None, False),
    )
    with pytest.raises(ShapeValidationError, match="nope") as info:
        shape.construct(DC, {"nope": 1}, context=CTX)
    assert isinstance(info.value, ValueError)
    assert "configure task_defaults" in str(info.value)
    with pytest.raises(ShapeCapabilityError):
        shape.schema(DC)


def test_attrs_shape_runs_converters() -> None:
    shape = AttrsShape()
    value = shape.construct(AT, {"limit": "4"})
    assert value.limit == 4
    assert shape.dump(value) == {"limit": 4, "name": "x"}
    assert [f.name for f in shape.fields(AT)] == ["limit", "name"]
    assert shape.fields(AT)[0].required and not shape.fields(AT)[1].required


def test_dump_mapping_is_what_a_scheduler_calls() -> None:
    for shape, value in [
        (DataclassShape(), DC()),
        (AttrsShape(), AT(limit=1)),
        (AnyShape(), {"grace": 5}),
        (PydanticShape(), {"grace": 5}),
    ]:
        assert isinstance(shape.dump_mapping(value, context=CTX), dict)
    with pytest.raises(ShapeError, match="expects a mapping"):
        DataclassShape().dump_mapping(42, context=CTX)


def test_any_shape_is_permissive() -> None:
    shape = AnyShape()
    assert shape.construct(Any, [1]) == [1]  # type: ignore[arg-type]
    assert shape.construct(int, "4") == 4
    assert shape.supports(object())

    class Plain:
        def __init__(self) -> None:
            self.a, self._hidden = 1, 2

    assert shape.dump(Plain()) == {"a": 1}
    with pytest.raises(ShapeCapabilityError):
        shape.schema(dict)


def test_custom_shape_contract_defaults() -> None:
    class Bare(Shape):
        name = "bare"

    shape = Bare()
    assert not shape.supports(DC)
    assert shape.dump({"a": DC()}) == {"a": {"grace": 5, "coalesce": False, "tags": []}}
    with pytest.raises(ShapeCapabilityError):
        shape.fields(DC)
    assert repr(shape) == "<Bare name='bare'>"


@pytest.mark.skipif(importlib.util.find_spec("pydantic") is None, reason="needs pydantic")
def test_pydantic_shape() -> None:
    import pydantic

    class Model(pydantic.BaseModel):
        limit: int = 1

    shape = resolve_shape("pydantic")
    assert shape.supports(Model) and shape.construct(Model, {"limit": "3"}).limit == 3
    assert shape.dump(Model(limit=2)) == {"limit": 2}
    assert shape.fields(Model) == (ShapeField("limit", int, 1, False),)
    assert shape.schema(Model)["properties"]["limit"]["type"] == "integer"
    with pytest.raises(ShapeValidationError):
        shape.construct(Model, {"limit": "x"})


def test_missing_optional_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name in ("msgspec", "pydantic") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.delitem(sys.modules, "msgspec", raising=False)
    monkeypatch.delitem(sys.modules, "pydantic", raising=False)
    for name, extra in (("msgspec", "msgspec"), ("pydantic", "pydantic")):
        with pytest.raises(ShapeDependencyError, match=rf"asyncz\[{extra}\]") as info:
            resolve_shape(name)
        assert isinstance(info.value, ImportError)
    with pytest.raises(ShapeDependencyError):
        resolve_shape(MsgspecShape)
    # The default works without pydantic for everything that is not a pydantic model.
    assert resolve_shape(None).dump_mapping({"grace": 1}) == {"grace": 1}
    assert not PydanticShape().supports(DC)

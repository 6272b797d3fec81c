"""Reading the task forms: text from the browser into checked values, or a :class:`FormError`.

Here: :func:`parse_trigger`, :func:`parse_create_form`, :func:`parse_edit_form`. Every value is
read as text and converted here: JSON for arguments (``json.loads``, never anything that runs
code), numbers, booleans, and a trigger built from a plugin's own constructor. The callable is
only named here; :class:`~asyncz.contrib.dashboard.callables.CallablePolicy` decides whether it
may be imported, in the views.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

TRIGGER_TYPES = ("interval", "cron", "date")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class FormError(ValueError):
    """A form field that cannot be used; ``field`` names it, the message says what is valid."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return "" if value is None else str(value).strip()


@attrs.frozen
class TriggerSpec:
    """A trigger as its plugin alias and plain keyword arguments: what ``add_task(fn, alias,
    **options)`` takes, locally or through a remote scheduler."""

    alias: str
    options: dict[str, Any]


def parse_trigger(trigger_type: str, value: str) -> TriggerSpec:
    """The trigger of the form's type and text: ``interval`` + ``"5s"``, ``cron`` + a crontab
    line (0 and 7 are Sunday), ``date`` + an ISO 8601 date-time. The trigger is built once here,
    so a bad value is reported on the form, naming the field."""
    from asyncz.plugins.triggers.cron import CronTrigger
    from asyncz.plugins.triggers.date import DateTrigger
    from asyncz.plugins.triggers.interval import IntervalTrigger, parse_interval

    kind = trigger_type.strip().lower()
    if kind not in TRIGGER_TYPES:
        raise FormError(
            "trigger_type",
            f"unknown trigger type {trigger_type!r}; choose one of {', '.join(TRIGGER_TYPES)}",
        )
    if not value.strip():
        examples = {"interval": "30s or 1h30m", "cron": "*/5 * * * *", "date": "2030-01-01T09:00"}
        raise FormError("trigger_value", f"give the {kind} schedule, e.g. {examples[kind]}")
    try:
        options: dict[str, Any]
        if kind == "interval":
            options = dict(parse_interval(value))
            IntervalTrigger(**options)
        elif kind == "cron":
            options = {"crontab": value.strip()}
            CronTrigger(**options)
        else:
            moment = datetime.fromisoformat(_offset_plus(value.strip().replace("Z", "+00:00")))
            options = {"run_at": moment}
            DateTrigger(**options)
    except (TypeError, ValueError) as exc:
        raise FormError("trigger_value", f"{kind} schedule {value!r}: {exc}") from None
    return TriggerSpec(kind, options)


_LOST_PLUS = re.compile(r"(T?\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


def _offset_plus(text: str) -> str:
    """Puts back the ``+`` of a UTC offset that a form encoding turned into a space
    (``2027-01-01T10:00:00 00:00``); a space is never valid there."""
    return _LOST_PLUS.sub(r"\1+\2", text)


def parse_json_list(text: str, field: str) -> list[Any]:
    if not text:
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormError(field, f"{field} is not JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, list):
        raise FormError(field, f'{field} must be a JSON array such as [1, "a"], got {text!r}')
    return value


def parse_json_object(text: str, field: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormError(field, f"{field} is not JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise FormError(field, f'{field} must be a JSON object such as {{"x": 1}}, got {text!r}')
    return value


def parse_bool(text: str, field: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise FormError(field, f"{field} must be true or false, got {text!r}")


def parse_positive_int(text: str, field: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise FormError(
            field, f"{field} must be a whole number of at least 1, got {text!r}"
        ) from None
    if value < 1:
        raise FormError(field, f"{field} must be a whole number of at least 1, got {text!r}")
    return value


def parse_positive_float(text: str, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FormError(
            field, f"{field} must be a number of seconds above 0, got {text!r}"
        ) from None
    if not value > 0 or value == float("inf"):
        raise FormError(field, f"{field} must be a number of seconds above 0, got {text!r}")
    return value


@attrs.frozen(kw_only=True)
class NewTask:
    """A checked creation form."""

    callable_path: str
    name: str | None
    store: str | None
    executor: str | None
    trigger: TriggerSpec
    args: list[Any]
    kwargs: dict[str, Any]


def parse_create_form(form: Mapping[str, Any]) -> NewTask:
    callable_path = _text(form, "callable_path")
    if not callable_path:
        raise FormError(
            "callable_path", "give the callable as module:function, e.g. myapp.jobs:cleanup"
        )
    trigger = parse_trigger(_text(form, "trigger_type") or "interval", _text(form, "trigger_value"))
    return NewTask(
        callable_path=callable_path,
        name=_text(form, "name") or None,
        store=_text(form, "store") or None,
        executor=_text(form, "executor") or None,
        trigger=trigger,
        args=parse_json_list(_text(form, "args"), "args"),
        kwargs=parse_json_object(_text(form, "kwargs"), "kwargs"),
    )


#: The fields the edit form can change, in the order the diff lists them.
EDIT_FIELDS = (
    "name",
    "callable",
    "args",
    "kwargs",
    "executor",
    "coalesce",
    "max_instances",
    "mistrigger_grace_time",
)


def parse_edit_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """The changes an edit form asks for, by field (``callable`` is the reference text).

    A field left empty is left alone, except ``mistrigger_grace_time`` with
    ``clear_mistrigger_grace_time`` set, which removes the limit."""
    changes: dict[str, Any] = {}
    name = _text(form, "name")
    if name:
        changes["name"] = name
    callable_path = _text(form, "callable_path")
    if callable_path:
        changes["callable"] = callable_path
    if "args" in form and _text(form, "args"):
        changes["args"] = parse_json_list(_text(form, "args"), "args")
    if "kwargs" in form and _text(form, "kwargs"):
        changes["kwargs"] = parse_json_object(_text(form, "kwargs"), "kwargs")
    executor = _text(form, "executor")
    if executor:
        changes["executor"] = executor
    coalesce = _text(form, "coalesce")
    if coalesce:
        changes["coalesce"] = parse_bool(coalesce, "coalesce")
    max_instances = _text(form, "max_instances")
    if max_instances:
        changes["max_instances"] = parse_positive_int(max_instances, "max_instances")
    grace = _text(form, "mistrigger_grace_time")
    clear = _text(form, "clear_mistrigger_grace_time")
    if clear and parse_bool(clear, "clear_mistrigger_grace_time"):
        if grace:
            raise FormError(
                "mistrigger_grace_time",
                "give a misfire grace time or clear it, not both",
            )
        changes["mistrigger_grace_time"] = None
    elif grace:
        changes["mistrigger_grace_time"] = parse_positive_float(grace, "mistrigger_grace_time")
    return changes

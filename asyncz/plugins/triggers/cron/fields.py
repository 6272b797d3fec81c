"""Asyncz's cron field and expression objects (``asyncz.triggers.cron.fields``/``.expressions``).

Asyncz, like APScheduler 3, describes a cron schedule as eight fields, each a list of
expressions (``*/3``, ``2-9``, ``tue-sat``, ``2nd wed``, ``last``) that can say which value comes
next for a date. ``CronTrigger`` does not work that way: it compiles its fields once into a
:class:`~asyncz.plugins.triggers.cron.expressions.CronSpec`. These classes are for code that
builds or inspects fields the Asyncz way. They hold no parsing or matching of their own: a
field or expression checks and reads its text with the trigger's parser
(:func:`~asyncz.plugins.triggers.cron.expressions.parse_keyword_field`), so both always agree.
"""

from __future__ import annotations

import calendar
import functools
import re
from datetime import date
from typing import Any, ClassVar

from asyncz.plugins.triggers.cron.expressions import (
    FIELD_BOUNDS,
    MONTH_NAMES,
    POSITIONS,
    WEEKDAY_NAMES,
    Special,
    field_text,
    parse_keyword_field,
    special_day,
)

__all__ = [
    "MAX_VALUES",
    "MIN_VALUES",
    "AllExpression",
    "BaseExpression",
    "BaseField",
    "DayOfMonthField",
    "DayOfWeekField",
    "LastDayOfMonthExpression",
    "MonthField",
    "MonthRangeExpression",
    "RangeExpression",
    "WeekField",
    "WeekdayPositionExpression",
    "WeekdayRangeExpression",
]

MIN_VALUES = {name: bounds[0] for name, bounds in FIELD_BOUNDS.items()}
MAX_VALUES = {name: bounds[1] for name, bounds in FIELD_BOUNDS.items()}


# -- reading a date --------------------------------------------------------------------------


def _value(name: str, when: date) -> int:
    """The value the field ``name`` has at ``when``."""
    if name == "week":
        return when.isocalendar()[1]
    if name == "day_of_week":
        return when.weekday()
    return int(getattr(when, name))


def _max_value(name: str, when: date) -> int:
    """The largest value the field ``name`` can take in ``when``'s month (day) or year (week)."""
    if name == "day":
        return calendar.monthrange(when.year, when.month)[1]
    if name == "week":
        return date(when.year, 12, 28).isocalendar()[1]  # 28 December is always in the last week
    return MAX_VALUES[name]


@functools.lru_cache(maxsize=512)
def _parsed(name: str, text: str) -> tuple[int, tuple[Special, ...]]:
    return parse_keyword_field(name, text)


def _next_value(name: str, text: str, when: date) -> int | None:
    """The first value at or after ``when``'s that the field expression ``text`` allows in
    ``when``'s month or year, or ``None``."""
    mask, specials = _parsed(name, text)
    if specials:
        first_weekday, ndays = calendar.monthrange(when.year, when.month)
        for special in specials:
            mask |= special_day(special, first_weekday, ndays)
    mask &= (1 << (_max_value(name, when) + 1)) - 1
    current = _value(name, when)
    rest = mask >> current
    if not rest:
        return None
    return current + (rest & -rest).bit_length() - 1


def _field_name(field: BaseField | str) -> str:
    name = field if isinstance(field, str) else getattr(field, "name", None)
    if name not in FIELD_BOUNDS:
        raise ValueError(f"{field!r} is not a cron field; the fields are {', '.join(FIELD_BOUNDS)}")
    return str(name)


def _name_index(kind: str, names: tuple[str, ...], value: Any) -> int:
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text not in names:
        raise ValueError(f"Invalid {kind} name {value!r}; valid names are {', '.join(names)}")
    return names.index(text)


def _whole(label: str, value: Any, minimum: int) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{label} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{label} must be at least {minimum}, got {value}")
    return value


# -- expressions -------------------------------------------------------------------------------


class BaseExpression:
    """One comma-separated item of a cron field; its text is :func:`str` of it."""

    __slots__ = ()

    def get_next_value(self, date: date, field: BaseField | str) -> int | None:
        """The first value at or after ``date``'s that this expression allows in ``field``
        (a field or a field name), or ``None`` when none is left in the month (or year)."""
        return _next_value(_field_name(field), str(self), date)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash((type(self), str(self)))


class AllExpression(BaseExpression):
    """``*`` (every value) or ``*/step``."""

    __slots__ = ("step",)

    def __init__(self, step: int | str | None = None) -> None:
        self.step = None if step is None else _whole("the step", step, 1)

    def __str__(self) -> str:
        return "*" if self.step is None else f"*/{self.step}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.step!r})"


class RangeExpression(BaseExpression):
    """``first``, ``first-last``, ``first/step`` (to the field's end) or ``first-last/step``."""

    __slots__ = ("first", "last", "step")

    def __init__(
        self, first: int | str, last: int | str | None = None, step: int | str | None = None
    ) -> None:
        self.first = _whole("the first value", first, 0)
        self.last = None if last is None else _whole("the last value", last, 0)
        if self.last is not None and self.last < self.first:
            raise ValueError(
                f"the range {self.first}-{self.last} runs backwards: the minimum value in a "
                "range must not be higher than the maximum"
            )
        self.step = None if step is None else _whole("the step", step, 1)

    def _bound(self, value: int) -> str:
        return str(value)

    def __str__(self) -> str:
        text = self._bound(self.first)
        if self.last is not None and self.last != self.first:
            text += f"-{self._bound(self.last)}"
        return text if self.step is None else f"{text}/{self.step}"

    def __repr__(self) -> str:
        args = [self._bound_repr(self.first)]
        if self.last is not None or self.step is not None:
            args.append("None" if self.last is None else self._bound_repr(self.last))
        if self.step is not None:
            args.append(repr(self.step))
        return f"{type(self).__name__}({', '.join(args)})"

    def _bound_repr(self, value: int) -> str:
        return repr(value)


class _NamedRangeExpression(RangeExpression):
    """A range written with names (``names[i]`` is the value ``i + offset``)."""

    __slots__ = ()
    kind: ClassVar[str]
    names: ClassVar[tuple[str, ...]]
    offset: ClassVar[int]

    def __init__(self, first: str, last: str | None = None) -> None:
        first_value = _name_index(self.kind, self.names, first) + self.offset
        last_value = (
            None if last is None else _name_index(self.kind, self.names, last) + self.offset
        )
        super().__init__(first_value, last_value)

    def _bound(self, value: int) -> str:
        return self.names[value - self.offset]

    def _bound_repr(self, value: int) -> str:
        return repr(self._bound(value))


class MonthRangeExpression(_NamedRangeExpression):
    """``jan``, ``jan-mar``: months by name."""

    __slots__ = ()
    kind, names, offset = "month", MONTH_NAMES, 1


class WeekdayRangeExpression(_NamedRangeExpression):
    """``mon``, ``tue-sat``: weekdays by name (Monday is 0)."""

    __slots__ = ()
    kind, names, offset = "weekday", WEEKDAY_NAMES, 0


class WeekdayPositionExpression(BaseExpression):
    """``1st fri`` ... ``5th fri``, ``last fri``: a weekday's position in the month (day field)."""

    __slots__ = ("option_num", "weekday")

    def __init__(self, option_name: str, weekday_name: str) -> None:
        self.option_num = _name_index("weekday position", POSITIONS, option_name)
        self.weekday = _name_index("weekday", WEEKDAY_NAMES, weekday_name)

    def get_next_value(self, date: date, field: BaseField | str = "day") -> int | None:
        return super().get_next_value(date, field)

    def __str__(self) -> str:
        return f"{POSITIONS[self.option_num]} {WEEKDAY_NAMES[self.weekday]}"

    def __repr__(self) -> str:
        position, weekday = POSITIONS[self.option_num], WEEKDAY_NAMES[self.weekday]
        return f"{type(self).__name__}({position!r}, {weekday!r})"


class LastDayOfMonthExpression(BaseExpression):
    """``last``: the last day of the month (day field)."""

    __slots__ = ()

    def get_next_value(self, date: date, field: BaseField | str = "day") -> int | None:
        return super().get_next_value(date, field)

    def __str__(self) -> str:
        return "last"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# -- fields ------------------------------------------------------------------------------------

_ALL_RE = re.compile(r"^\*(?:/(\d+))?$")
_NAMES_RE = re.compile(r"^([a-z]+)(?:-([a-z]+))?$")
_POSITION_RE = re.compile(r"^(\S+)\s+([a-z]+)$")


class BaseField:
    """One cron field (``name`` is one of ``year``, ``month``, ``day``, ``week``,
    ``day_of_week``, ``hour``, ``minute``, ``second``) with its expressions.

    ``exprs`` is an int or a string of comma-separated expressions, checked as
    ``CronTrigger`` checks it (``ValueError`` naming the field and the bad item).
    """

    #: False for week and day_of_week, which narrow the days rather than name a date part
    REAL: ClassVar[bool] = True
    __slots__ = ("expressions", "is_default", "name")

    def __init__(self, name: str, exprs: int | str, is_default: bool = False) -> None:
        self.name = _field_name(name)
        self.is_default = is_default
        text = field_text(self.name, exprs)
        _parsed(self.name, text)  # the trigger's checks and messages
        self.expressions: list[BaseExpression] = [
            self.compile_expression(i) for i in text.split(",")
        ]

    @property
    def real(self) -> bool:
        return self.REAL

    def compile_expression(self, item: str) -> BaseExpression:
        """The expression object for one (already checked) item of this field."""
        match = _ALL_RE.match(item)
        if match:
            return AllExpression(match.group(1))
        head, _, step = item.partition("/")
        first, _, last = head.partition("-")
        return RangeExpression(
            self._number(first), self._number(last) if last else None, step or None
        )

    def _number(self, token: str) -> int:
        mask, _ = _parsed(self.name, token)  # a number, or a name where the field has names
        return (mask & -mask).bit_length() - 1

    def get_min(self, date: date) -> int:
        return MIN_VALUES[self.name]

    def get_max(self, date: date) -> int:
        return _max_value(self.name, date)

    def get_value(self, date: date) -> int:
        return _value(self.name, date)

    def get_next_value(self, date: date) -> int | None:
        """The first value at or after ``date``'s that the field allows, or ``None`` when none
        is left in the month (day), year (week) or at all."""
        return _next_value(self.name, str(self), date)

    def __str__(self) -> str:
        return ",".join(str(expression) for expression in self.expressions)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BaseField):
            return NotImplemented
        return (type(self), self.name, str(self)) == (type(other), other.name, str(other))

    def __hash__(self) -> int:
        return hash((type(self), self.name, str(self)))


class WeekField(BaseField):
    """ISO week numbers (1-53)."""

    REAL = False
    __slots__ = ()


class DayOfMonthField(BaseField):
    """Days of the month: numbers, ``last``, ``3rd fri``, ``last fri``."""

    __slots__ = ()

    def compile_expression(self, item: str) -> BaseExpression:
        if item == "last":
            return LastDayOfMonthExpression()
        match = _POSITION_RE.match(item)
        if match:
            return WeekdayPositionExpression(*match.groups())
        return super().compile_expression(item)


class DayOfWeekField(BaseField):
    """Weekdays: 0-6 or ``mon``-``sun``, Monday first."""

    REAL = False
    __slots__ = ()

    def compile_expression(self, item: str) -> BaseExpression:
        match = _NAMES_RE.match(item)
        if match:
            return WeekdayRangeExpression(*match.groups())
        return super().compile_expression(item)


class MonthField(BaseField):
    """Months: 1-12 or ``jan``-``dec``."""

    __slots__ = ()

    def compile_expression(self, item: str) -> BaseExpression:
        match = _NAMES_RE.match(item)
        if match:
            return MonthRangeExpression(*match.groups())
        return super().compile_expression(item)

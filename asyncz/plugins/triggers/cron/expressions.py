"""Cron expressions: parsing both dialects into one compiled, immutable :class:`CronSpec`.

Two dialects share one compiled form:

* **fields** — the keyword arguments of ``CronTrigger(...)`` with Asyncz/APScheduler meanings:
  ``day_of_week`` 0 = Monday, ``day`` may be ``last``, ``3rd fri`` or ``last fri``, and the
  day fields are ANDed.
* **crontab** — ``CronTrigger.from_crontab(...)`` with crontab(5) meanings: 0 and 7 are Sunday,
  day-of-month and day-of-week are ORed when both are restricted (neither starts with ``*``),
  ``@daily``-style macros, and the Quartz extensions ``L``, ``L-n``, ``nW``, ``LW``, ``nL`` and
  ``n#k``.

Sets of allowed values are bit masks (bit ``n`` set = value ``n`` allowed) so that "the next
allowed value at or after ``n``" is two integer operations. The day set depends on the month, so
it is computed per (year, month) and cached on the spec. Specs are cached by their source text,
so ten thousand tasks with the same expression share one spec and one day cache.
"""

from __future__ import annotations

import bisect
import calendar
import functools
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

__all__ = [
    "FIELD_BOUNDS",
    "FIELD_NAMES",
    "MAX_YEAR",
    "MIN_YEAR",
    "MONTH_NAMES",
    "POSITIONS",
    "WEEKDAY_NAMES",
    "CronSpec",
    "compile_crontab",
    "compile_fields",
    "field_text",
    "parse_keyword_field",
    "special_day",
]

MIN_YEAR = 1970
MAX_YEAR = 9999
FIELD_NAMES = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
# What an unset field becomes when it is less significant than the last field given (APScheduler's
# rule); week and day_of_week stay unrestricted so that e.g. ``day=1`` is not narrowed.
_DEFAULTS = {
    "year": "*",
    "month": "1",
    "day": "1",
    "week": "*",
    "day_of_week": "*",
    "hour": "0",
    "minute": "0",
    "second": "0",
}

_MONTHS = {
    name: i
    for i, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAYS_MON0 = {name: i for i, name in enumerate(_WEEKDAY_NAMES)}  # Python's numbering
_WEEKDAYS_SUN0 = {name: (i + 1) % 7 for i, name in enumerate(_WEEKDAY_NAMES)}  # crontab's
_ORDINALS = {"1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5}
#: Names the keyword fields accept: months (jan = 1), weekdays (mon = 0) and day positions.
MONTH_NAMES = tuple(_MONTHS)
WEEKDAY_NAMES = _WEEKDAY_NAMES
POSITIONS = (*_ORDINALS, "last")

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_RANGE_RE = re.compile(r"^(\*|[a-z0-9]+)(?:-([a-z0-9]+))?(?:/(\d+))?$")
_KW_DAY_SPECIAL_RE = re.compile(r"^(1st|2nd|3rd|4th|5th|last)\s+([a-z]+)$")
_CT_LAST_RE = re.compile(r"^l(?:-(\d+))?$")
_CT_NEAREST_RE = re.compile(r"^(\d+)w$")
_CT_DOW_LAST_RE = re.compile(r"^(?:([a-z0-9]+)l|l([a-z0-9]+))$")
_CT_DOW_NTH_RE = re.compile(r"^([a-z0-9]+)#(\d+)$")

# Day "specials" are resolved per month: ("last", k) = k days before the last day,
# ("nearest", n) = the weekday nearest to day n, ("lastweekday",), ("nth", weekday, n),
# ("lastof", weekday); weekdays always in Python's numbering (Monday = 0).
Special = tuple[Any, ...]


class _Field:
    """How one field is spelled and checked: its range, names and the help shown in errors."""

    __slots__ = ("help", "hi", "lo", "name", "names")

    def __init__(
        self, name: str, lo: int, hi: int, names: Mapping[str, int] | None, help: str
    ) -> None:
        self.name, self.lo, self.hi, self.names, self.help = name, lo, hi, names or {}, help

    def error(self, text: str, problem: str) -> ValueError:
        return ValueError(f"{self.name}={text!r}: {problem}; {self.name} takes {self.help}")

    def number(self, token: str, text: str, item: str | None = None, role: str = "") -> int:
        """The value ``token`` names; ``role`` ("first"/"last") words the range error."""
        if token.isdigit():
            value = int(token)
        elif token in self.names:
            return self.names[token]
        else:
            raise self.error(text, f"{token!r} is not a number or a known name")
        if not self.lo <= value <= self.hi:
            which = f"The {role} value" if role else "The value"
            if value < self.lo:
                problem = f"{which} ({value}) is lower than the minimum value ({self.lo})"
            else:
                problem = f"{which} ({value}) is higher than the maximum value ({self.hi})"
            raise self.error(text, f"Error validating expression {item or token!r}: {problem}")
        return value

    def range_mask(
        self,
        item: str,
        text: str,
        *,
        star_hi: int | None = None,
        open_hi: int | None = None,
        strict_step: bool = False,
    ) -> int:
        """The mask of ``*``, ``*/n``, ``a``, ``a-b``, ``a-b/n`` or ``a/n``.

        With ``strict_step`` (the keyword dialect, as Asyncz) a step may not exceed the span
        of its range (``4-6/3`` is an error); crontab lines accept any step up to the field's
        size, as cron does.
        """
        match = _RANGE_RE.match(item)
        if not match:
            raise self.error(text, f"{item!r} is not a value, a range or a step")
        first, last, step_text = match.groups()
        if first == "*":
            if last is not None:
                raise self.error(text, f"{item!r}: '*' cannot start a range")
            lo, hi = self.lo, self.hi if star_hi is None else star_hi
        else:
            lo = self.number(first, text, item, "first" if last is not None else "")
            if last is not None:
                hi = self.number(last, text, item, "last")
                if hi == 0 < lo and self.hi == 7:
                    hi = 7  # crontab day-of-week: 'fri-sun' is 5-7
                if hi < lo:
                    raise self.error(
                        text,
                        f"the range {item!r} runs backwards; write it as a list instead "
                        f"(e.g. '{first}-{self.hi},{self.lo}-{last}')",
                    )
            elif step_text is not None:
                hi = self.hi if open_hi is None else open_hi
            else:
                hi = lo
        step = 1
        if step_text is not None:
            step = int(step_text)
            span = hi - lo if strict_step else self.hi - self.lo + 1
            if step < 1:
                raise self.error(text, f"the step {step} in {item!r} must be 1-{max(span, 1)}")
            if step > span:
                if strict_step:
                    raise self.error(
                        text,
                        f"Error validating expression {item!r}: The step value ({step}) is "
                        f"higher than the total range of the expression ({span})",
                    )
                raise self.error(text, f"the step {step} in {item!r} must be 1-{span}")
        mask = 0
        for value in range(lo, hi + 1, step):
            mask |= 1 << value
        return mask


_KW = {
    "year": _Field("year", MIN_YEAR, MAX_YEAR, None, f"{MIN_YEAR}-{MAX_YEAR}"),
    "month": _Field("month", 1, 12, _MONTHS, "1-12 or jan-dec"),
    "day": _Field("day", 1, 31, None, "1-31, 'last', '1st'-'5th <weekday>' or 'last <weekday>'"),
    "week": _Field("week", 1, 53, None, "ISO weeks 1-53"),
    "day_of_week": _Field(
        "day_of_week",
        0,
        6,
        _WEEKDAYS_MON0,
        "0-6 or mon-sun, where 0 is Monday (in crontab syntax, use "
        "CronTrigger.from_crontab, where 0 and 7 are Sunday)",
    ),
    "hour": _Field("hour", 0, 23, None, "0-23"),
    "minute": _Field("minute", 0, 59, None, "0-59"),
    "second": _Field("second", 0, 59, None, "0-59"),
}
#: The smallest and largest value of each keyword field.
FIELD_BOUNDS = {name: (field.lo, field.hi) for name, field in _KW.items()}
_CT = {
    "second": _Field("second", 0, 59, None, "0-59"),
    "minute": _Field("minute", 0, 59, None, "0-59"),
    "hour": _Field("hour", 0, 23, None, "0-23"),
    "day of month": _Field("day of month", 1, 31, None, "1-31, '*', '?', 'L', 'L-n', 'nW' or 'LW'"),
    "month": _Field("month", 1, 12, _MONTHS, "1-12 or jan-dec"),
    "day of week": _Field(
        "day of week",
        0,
        7,
        _WEEKDAYS_SUN0,
        "0-7 or sun-sat (0 and 7 are Sunday), '*', '?', 'nL' or 'n#k'",
    ),
}


def _items(field: _Field, text: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise field.error(text, "empty item in the list")
    return items


def _bits(mask: int) -> list[int]:
    return [i for i in range(mask.bit_length()) if mask >> i & 1]


def _lowest(mask: int) -> int:
    return (mask & -mask).bit_length() - 1


class CronSpec:
    """A compiled cron schedule: what wall-clock times match. Immutable; safe to share.

    ``follows_real_time`` is the DST class of ISC cron: true when the hour, minute or second
    field is a wildcard (starts with ``*``), so the schedule follows elapsed time across DST
    changes; false for fixed-time schedules, which run once per matching wall time.
    """

    __slots__ = (
        "_day_cache",
        "_dom_mask",
        "_dom_specials",
        "_dow_specials",
        "_dow_table",
        "_year_set",
        "day_or",
        "dom_restricted",
        "dow_restricted",
        "first_hour",
        "first_minute",
        "first_second",
        "follows_real_time",
        "hour_mask",
        "minute_mask",
        "month_mask",
        "second_mask",
        "source",
        "week_mask",
        "years",
    )

    def __init__(
        self,
        *,
        source: str,
        years: tuple[int, ...] | None,
        month_mask: int,
        dom_mask: int,
        dom_specials: tuple[Special, ...],
        dow_mask: int,
        dow_specials: tuple[Special, ...],
        week_mask: int | None,
        hour_mask: int,
        minute_mask: int,
        second_mask: int,
        day_or: bool,
        dom_restricted: bool,
        dow_restricted: bool,
        follows_real_time: bool,
    ) -> None:
        self.source = source
        self.years = years
        self._year_set = frozenset(years or ())
        self.month_mask = month_mask
        self._dom_mask = dom_mask
        self._dom_specials = dom_specials
        self._dow_specials = dow_specials
        self.week_mask = week_mask
        self.hour_mask, self.minute_mask, self.second_mask = hour_mask, minute_mask, second_mask
        self.first_hour = _lowest(hour_mask)
        self.first_minute = _lowest(minute_mask)
        self.first_second = _lowest(second_mask)
        self.day_or = day_or and dom_restricted and dow_restricted
        self.dom_restricted, self.dow_restricted = dom_restricted, dow_restricted
        self.follows_real_time = follows_real_time
        # _dow_table[w] = the days of a month whose first day is weekday w that match the
        # plain weekdays of the day-of-week field.
        self._dow_table = tuple(
            sum(1 << d for d in range(1, 32) if dow_mask >> ((first + d - 1) % 7) & 1)
            for first in range(7)
        )
        self._day_cache: dict[int, int] = {}

    # -- days ----------------------------------------------------------------------------------

    def day_mask(self, year: int, month: int) -> int:
        """The days (bits 1-31) of ``year-month`` that match."""
        key = year * 16 + month
        mask = self._day_cache.get(key)
        if mask is None:
            mask = self._compute_day_mask(year, month)
            if len(self._day_cache) >= 4096:
                self._day_cache.clear()  # bounded: long scans must not grow memory
            self._day_cache[key] = mask
        return mask

    def _compute_day_mask(self, year: int, month: int) -> int:
        first, ndays = calendar.monthrange(year, month)
        month_days = (1 << (ndays + 1)) - 2
        dom = self._dom_mask & month_days
        for special in self._dom_specials:
            dom |= special_day(special, first, ndays)
        dow = self._dow_table[first] & month_days
        for special in self._dow_specials:
            dow |= special_day(special, first, ndays)
        # Unrestricted fields hold every day, so AND is right whenever one is unrestricted
        # ('*/2' counts as unrestricted, as in ISC cron, and still narrows the days).
        mask = dom | dow if self.day_or else dom & dow
        if self.week_mask is not None and mask:
            week = date(year, month, 1).isocalendar()[1]
            weekday = first
            for day in range(1, ndays + 1):
                if weekday == 0 and day > 1:
                    week = date(year, month, day).isocalendar()[1]
                if not self.week_mask >> week & 1:
                    mask &= ~(1 << day)
                weekday = (weekday + 1) % 7
        return mask

    def ever_matches(self) -> bool:
        """Whether some date can match, given months, day fields, weeks and years."""
        # The Gregorian calendar (weekdays, leap years, ISO weeks) repeats every 400 years, so
        # one cycle decides for unrestricted years. Only impossible schedules scan it all.
        years = self.years if self.years is not None else range(2000, 2400)
        months = _bits(self.month_mask)
        found = any(self._compute_day_mask(y, m) for y in years for m in months)
        return found

    # -- the search ----------------------------------------------------------------------------

    def next_wall(
        self, year: int, month: int, day: int, hour: int, minute: int, second: int
    ) -> tuple[int, int, int, int, int, int] | None:
        """The first matching wall-clock time at or after the given one (fields may overflow
        by one, e.g. ``second=60``), or ``None`` after year 9999.

        Field by field with carry: a field without an allowed value left carries into the next
        larger field and resets the smaller ones to their first allowed value.
        """
        hours, minutes, seconds = self.hour_mask, self.minute_mask, self.second_mask
        h0, m0, s0 = self.first_hour, self.first_minute, self.first_second
        years, months = self.years, self.month_mask
        day_cache = self._day_cache
        while True:
            if years is not None:
                if year > years[-1]:
                    return None
                if year not in self._year_set:
                    year = years[bisect.bisect_left(years, year)]
                    month, day, hour, minute, second = 1, 1, h0, m0, s0
            elif year > MAX_YEAR:
                return None
            rest = months >> month
            if not rest:
                year, month, day, hour, minute, second = year + 1, 1, 1, h0, m0, s0
                continue
            if not rest & 1:
                month += (rest & -rest).bit_length() - 1
                day, hour, minute, second = 1, h0, m0, s0
            mask = day_cache.get(year * 16 + month)
            if mask is None:
                mask = self.day_mask(year, month)
            rest = mask >> day
            if not rest:
                month, day, hour, minute, second = month + 1, 1, h0, m0, s0
                continue
            if not rest & 1:
                day += (rest & -rest).bit_length() - 1
                hour, minute, second = h0, m0, s0
            rest = hours >> hour
            if not rest:
                day, hour, minute, second = day + 1, h0, m0, s0
                continue
            if not rest & 1:
                hour += (rest & -rest).bit_length() - 1
                minute, second = m0, s0
            rest = minutes >> minute
            if not rest:
                hour, minute, second = hour + 1, m0, s0
                continue
            if not rest & 1:
                minute += (rest & -rest).bit_length() - 1
                second = s0
            rest = seconds >> second
            if not rest:
                minute, second = minute + 1, s0
                continue
            return year, month, day, hour, minute, second + (rest & -rest).bit_length() - 1

    def __repr__(self) -> str:
        return f"<CronSpec {self.source!r}>"


def special_day(special: Special, first: int, ndays: int) -> int:
    """The bit of the day a special names in a month (0 when it names none)."""
    kind = special[0]
    if kind == "last":
        day = ndays - special[1]
    elif kind == "nth":
        day = 1 + (special[1] - first) % 7 + 7 * (special[2] - 1)
    elif kind == "lastof":
        day = ndays - (first + ndays - 1 - special[1]) % 7
    elif kind == "lastweekday":
        weekday = (first + ndays - 1) % 7
        day = ndays - max(0, weekday - 4)
    else:  # "nearest": the weekday nearest to day n, without leaving the month
        day = special[1]
        if day > ndays:
            return 0
        weekday = (first + day - 1) % 7
        if weekday == 5:
            day = day - 1 if day > 1 else day + 2
        elif weekday == 6:
            day = day + 1 if day < ndays else day - 2
    return 1 << day if 1 <= day <= ndays else 0


# -- the keyword dialect ------------------------------------------------------------------------


def field_text(name: str, value: Any) -> str:
    """A keyword field's expression in the form the parser reads: lower case, no spaces
    around commas. Raises ``TypeError`` for values that are neither ints nor strings."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(
            f"cron field {name} must be an int or a str, got {type(value).__name__} {value!r}"
        )
    text = str(value).strip().lower()
    if not text:
        raise ValueError(f"{name}={value!r}: empty expression; {name} takes {_KW[name].help}")
    return ",".join(item.strip() for item in text.split(","))


def resolve_fields(given: Mapping[str, Any]) -> dict[str, str]:
    """All eight field expressions from the given ones, by APScheduler's rule for unset fields:
    more significant than the last given field -> ``*``, less significant -> the minimum."""
    texts = {name: field_text(name, value) for name, value in given.items()}
    if not texts:
        return dict.fromkeys(FIELD_NAMES, "*")
    last = max(FIELD_NAMES.index(name) for name in texts)
    return {
        name: texts.get(name, "*" if i < last else _DEFAULTS[name])
        for i, name in enumerate(FIELD_NAMES)
    }


def parse_keyword_field(name: str, text: str) -> tuple[int, tuple[Special, ...]]:
    """One keyword-dialect field: the mask of its plain values and its day specials.

    ``text`` is lower case without spaces around commas (see :func:`resolve_fields`). Specials
    (``last``, ``3rd fri``, ``last fri``) only occur in ``day``; they depend on the month and
    are resolved with :func:`special_day`. Raises ``ValueError`` naming the field and the item.
    """
    field = _KW[name]
    mask, specials = 0, list[Special]()
    for item in _items(field, text):
        if name == "day":
            if item == "last":
                specials.append(("last", 0))
                continue
            match = _KW_DAY_SPECIAL_RE.match(item)
            if match:
                ordinal, weekday = match.groups()
                if weekday not in _WEEKDAYS_MON0:
                    raise field.error(text, f"{weekday!r} is not a weekday name (mon-sun)")
                if ordinal == "last":
                    specials.append(("lastof", _WEEKDAYS_MON0[weekday]))
                else:
                    specials.append(("nth", _WEEKDAYS_MON0[weekday], _ORDINALS[ordinal]))
                continue
        elif name == "day_of_week" and (
            "#" in item or (item.endswith("l") and item[:-1] in _WEEKDAYS_MON0)
        ):
            raise field.error(
                text,
                f"{item!r} is crontab syntax; with keyword fields write day='3rd fri' or "
                "day='last fri', or use CronTrigger.from_crontab",
            )
        mask |= field.range_mask(item, text, strict_step=True)
    return mask, tuple(specials)


@functools.lru_cache(maxsize=1024)
def _compile_fields_cached(items: tuple[tuple[str, str], ...]) -> CronSpec:
    fields = dict(items)
    masks = {
        name: parse_keyword_field(name, fields[name])[0]
        for name in ("month", "day_of_week", "hour", "minute", "second")
    }
    years = None
    if fields["year"] != "*":
        years = tuple(_bits(parse_keyword_field("year", fields["year"])[0]))
    week_mask = None
    if fields["week"] != "*":
        week_mask = parse_keyword_field("week", fields["week"])[0]
    dom_mask, specials = parse_keyword_field("day", fields["day"])
    spec = CronSpec(
        source=", ".join(f"{name}={fields[name]!r}" for name in FIELD_NAMES),
        years=years,
        month_mask=masks["month"],
        dom_mask=dom_mask,
        dom_specials=specials,
        dow_mask=masks["day_of_week"],
        dow_specials=(),
        week_mask=week_mask,
        hour_mask=masks["hour"],
        minute_mask=masks["minute"],
        second_mask=masks["second"],
        day_or=False,
        dom_restricted=True,
        dow_restricted=True,
        follows_real_time=any(
            fields[name].startswith("*") for name in ("hour", "minute", "second")
        ),
    )
    # With years listed, a schedule matching none of their dates is merely finished (as one whose
    # dates are all past); with every year open, it is impossible and said so.
    if years is None and not spec.ever_matches():
        raise ValueError(
            f"the cron fields {spec.source} never match any date; check day, month, week, "
            "day_of_week and year together"
        )
    return spec


def compile_fields(fields: Mapping[str, str]) -> CronSpec:
    """Compile the eight resolved keyword fields (see :func:`resolve_fields`)."""
    return _compile_fields_cached(tuple((name, fields[name]) for name in FIELD_NAMES))


# -- the crontab dialect ------------------------------------------------------------------------


#: Expressions already normalized (exact str only; errors are not kept): tasks are often added
#: in bulk with one expression. Bounded, like compile_crontab's cache.
_NORMALIZED: dict[str, str] = {}


def normalize_crontab(expr: Any) -> str:
    """The expression with single spaces and lower case, or a ValueError saying what is wrong."""
    if type(expr) is str:
        known = _NORMALIZED.get(expr)
        if known is not None:
            return known
        text = _normalize(expr)
        if len(_NORMALIZED) < 1024:
            _NORMALIZED[expr] = text
        return text
    return _normalize(expr)


def _normalize(expr: Any) -> str:
    if not isinstance(expr, str):
        raise TypeError(f"a crontab expression must be a str, got {type(expr).__name__} {expr!r}")
    text = " ".join(expr.split()).lower()
    if text.startswith("@"):
        if text not in _MACROS:
            hint = (
                " (@reboot has no meaning for a scheduler; use a 'date' trigger with no "
                "run_at, or the 'shutdown' trigger)"
                if text == "@reboot"
                else ""
            )
            raise ValueError(
                f"unknown crontab macro {expr!r}{hint}; known macros are "
                f"{', '.join(sorted(_MACROS))}"
            )
        return text
    count = len(text.split(" ")) if text else 0
    if count not in (5, 6):
        raise ValueError(
            f"crontab expression {expr!r} has {count} fields; write 5 fields "
            "'minute hour day-of-month month day-of-week', optionally with a leading seconds "
            "field (6 fields), or a macro such as '@daily'"
        )
    return text


@functools.lru_cache(maxsize=1024)
def compile_crontab(text: str) -> CronSpec:
    """Compile a normalized crontab expression (see :func:`normalize_crontab`)."""
    expanded = _MACROS.get(text, text)
    parts = expanded.split(" ")
    second_text = parts.pop(0) if len(parts) == 6 else "0"
    minute_text, hour_text, dom_text, month_text, dow_text = parts
    masks = {}
    for name, field_text in (
        ("second", second_text),
        ("minute", minute_text),
        ("hour", hour_text),
        ("month", month_text),
    ):
        field = _CT[name]
        mask = 0
        for item in _items(field, field_text):
            mask |= field.range_mask(item, field_text)
        masks[name] = mask

    dom = _CT["day of month"]
    dom_mask, dom_specials = 0, list[Special]()
    dom_star = dom_text.startswith("*") or dom_text == "?"
    if dom_text != "?":
        for item in _items(dom, dom_text):
            if item == "lw":
                dom_specials.append(("lastweekday",))
                continue
            match = _CT_LAST_RE.match(item)
            if match:
                back = int(match.group(1) or 0)
                if back > 30:
                    raise dom.error(dom_text, f"{item!r}: L-n takes n in 0-30")
                dom_specials.append(("last", back))
                continue
            match = _CT_NEAREST_RE.match(item)
            if match:
                dom_specials.append(("nearest", dom.number(match.group(1), dom_text)))
                continue
            dom_mask |= dom.range_mask(item, dom_text)
    else:
        dom_mask = (1 << 32) - 2

    dow = _CT["day of week"]
    dow_mask, dow_specials = 0, list[Special]()
    dow_star = dow_text.startswith("*") or dow_text == "?"
    if dow_text != "?":
        for item in _items(dow, dow_text):
            if item == "l":
                raise dow.error(
                    dow_text,
                    "a bare 'L' is ambiguous in day-of-week; write e.g. '5L' or "
                    "'friL' for the last Friday, or put 'L' in day-of-month for the last day",
                )
            match = _CT_DOW_NTH_RE.match(item)
            if match:
                weekday = dow.number(match.group(1), dow_text)
                nth = int(match.group(2))
                if not 1 <= nth <= 5:
                    raise dow.error(dow_text, f"{item!r}: '#k' takes k in 1-5")
                dow_specials.append(("nth", (weekday - 1) % 7, nth))
                continue
            match = _CT_DOW_LAST_RE.match(item)
            if match and "-" not in item and "/" not in item:
                weekday = dow.number(match.group(1) or match.group(2), dow_text)
                dow_specials.append(("lastof", (weekday - 1) % 7))
                continue
            # crontab numbers (0/7 = Sunday) -> Python's (0 = Monday); 'a/n' stops at Saturday
            mask = dow.range_mask(item, dow_text, star_hi=6, open_hi=6)
            for value in _bits(mask):
                dow_mask |= 1 << ((value - 1) % 7)
    else:
        dow_mask = 0b1111111

    spec = CronSpec(
        source=text,
        years=None,
        month_mask=masks["month"],
        dom_mask=dom_mask,
        dom_specials=tuple(dom_specials),
        dow_mask=dow_mask,
        dow_specials=tuple(dow_specials),
        week_mask=None,
        hour_mask=masks["hour"],
        minute_mask=masks["minute"],
        second_mask=masks["second"],
        day_or=True,
        dom_restricted=not dom_star,
        dow_restricted=not dow_star,
        follows_real_time=any(t.startswith("*") for t in (second_text, minute_text, hour_text)),
    )
    if not spec.ever_matches():
        raise ValueError(f"crontab expression {text!r} never matches any date")
    return spec

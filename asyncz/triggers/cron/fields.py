"""Asyncz's path ``asyncz.triggers.cron.fields``: cron field objects (and their expressions)."""

from asyncz.plugins.triggers.cron.fields import (
    MAX_VALUES,
    MIN_VALUES,
    AllExpression,
    BaseExpression,
    BaseField,
    DayOfMonthField,
    DayOfWeekField,
    LastDayOfMonthExpression,
    MonthField,
    MonthRangeExpression,
    RangeExpression,
    WeekdayPositionExpression,
    WeekdayRangeExpression,
    WeekField,
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

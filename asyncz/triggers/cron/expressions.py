"""Asyncz's path ``asyncz.triggers.cron.expressions``: the items of a cron field."""

from asyncz.plugins.triggers.cron.fields import (
    MAX_VALUES,
    MIN_VALUES,
    AllExpression,
    BaseExpression,
    LastDayOfMonthExpression,
    MonthRangeExpression,
    RangeExpression,
    WeekdayPositionExpression,
    WeekdayRangeExpression,
)

__all__ = [
    "MAX_VALUES",
    "MIN_VALUES",
    "AllExpression",
    "BaseExpression",
    "LastDayOfMonthExpression",
    "MonthRangeExpression",
    "RangeExpression",
    "WeekdayPositionExpression",
    "WeekdayRangeExpression",
]

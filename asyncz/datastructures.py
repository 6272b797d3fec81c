"""Asyncz's path ``asyncz.datastructures``: :class:`TaskState`, what ``Task.__getstate__``
returns and ``Task.__setstate__`` accepts; and the names Asyncz's pickled trigger states refer
to (``DateState``, ``IntervalState``, ``CronState``, ``CombinationState``), which read such a
state into asyncz's trigger (:mod:`asyncz.plugins.serializers.asyncz_records`)."""

from asyncz.core.task import TaskState
from asyncz.plugins.serializers.asyncz_records import (
    CombinationState,
    CronState,
    DateState,
    IntervalState,
)

__all__ = ["CombinationState", "CronState", "DateState", "IntervalState", "TaskState"]

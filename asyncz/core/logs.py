"""Where the scheduler, its stores and its executors get their loggers (``loggers_class``).

A loggers class is a mapping from a logger name to a :class:`logging.Logger` that creates
entries on first use, as Asyncz's ``ClassicLogging`` is; a custom one can route or wrap loggers
without the engine knowing.
"""

from __future__ import annotations

import logging

__all__ = ["ClassicLogging", "default_loggers_class"]


class ClassicLogging(dict[str, logging.Logger]):
    """Loggers from :func:`logging.getLogger`, created on first lookup."""

    def __missing__(self, name: str) -> logging.Logger:
        logger = self[name] = logging.getLogger(name)
        return logger


#: The loggers class used when the ``loggers_class`` option is not given.
default_loggers_class = ClassicLogging

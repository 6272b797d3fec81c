"""Asyncz's path ``asyncz.triggers.combining``."""

from asyncz.plugins.triggers.combining import (
    AndTrigger,
    BaseCombinationTrigger,
    OrTrigger,
    SearchHorizonError,
)

__all__ = ["AndTrigger", "BaseCombinationTrigger", "OrTrigger", "SearchHorizonError"]

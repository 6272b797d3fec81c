"""Asyncz's path ``asyncz.triggers.base``: the trigger base class."""

from asyncz.core.protocols import BaseTrigger, Trigger

__all__ = ["BaseTrigger", "Trigger"]

"""Asyncz's path ``asyncz.triggers.types``: the type a trigger is annotated with."""

from asyncz.core.protocols import BaseTrigger, Trigger

#: Asyncz annotates triggers with ``TriggerType``; here it is the trigger protocol.
TriggerType = Trigger

__all__ = ["BaseTrigger", "TriggerType"]

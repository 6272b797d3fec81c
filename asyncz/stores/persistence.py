"""Asyncz's path ``asyncz.stores.persistence``: the task-state envelope and its constants."""

from asyncz.plugins.stores.persistent import (
    TASK_STATE_ENTITY,
    TASK_STATE_ENVELOPE_VERSION,
    TaskStateEnvelope,
    open_envelope,
)

__all__ = ["TASK_STATE_ENTITY", "TASK_STATE_ENVELOPE_VERSION", "TaskStateEnvelope", "open_envelope"]

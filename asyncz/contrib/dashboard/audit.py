"""The audit trail: what operators did through the dashboard (the Audit page).

Here: :class:`AuditRecord` (one management action as plain data), the bounded, thread-safe
:class:`MemoryAuditTrailStorage` and the process-wide default storage
(:func:`get_audit_storage`). Kept apart from run history on purpose: an audit record says who
asked for what and whether the dashboard could do it, not how a run went.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Final

import attrs

from asyncz.contrib.dashboard.records import BoundedRecords, ProcessDefault

__all__ = [
    "AUDIT_ACTIONS",
    "AUDIT_OUTCOMES",
    "AuditRecord",
    "MemoryAuditTrailStorage",
    "action_label",
    "get_audit_storage",
]

UTC = timezone.utc

#: The actions the dashboard records. Others of the same dotted form may be recorded too.
AUDIT_ACTIONS: Final = (
    "task.create",
    "task.update",
    "task.run",
    "task.pause",
    "task.resume",
    "task.remove",
    "task.bulk_run",
    "task.bulk_pause",
    "task.bulk_resume",
    "task.bulk_remove",
)
#: ``ok``: done; ``warning``: done in part, or with something to know; ``error``: refused or
#: failed.
AUDIT_OUTCOMES: Final = ("ok", "warning", "error")
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
#: Longer details and change values are cut to this many characters.
DETAIL_MAX = 2000


def action_label(action: str) -> str:
    """``"Task Create"`` for ``"task.create"``, ``"Task Bulk Run"`` for ``"task.bulk_run"``."""
    return " ".join(part.replace("_", " ").title() for part in action.split("."))


def _cut(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 3] + "..."


def _plain_changes(
    changes: Mapping[str, Any] | None,
) -> dict[str, tuple[str | None, str | None]]:
    """``{field: (before, after)}`` with both sides as text (a bare value is the "after")."""
    if not changes:
        return {}
    plain: dict[str, tuple[str | None, str | None]] = {}
    for field, change in changes.items():
        if isinstance(change, tuple) and len(change) == 2:
            plain[str(field)] = (_cut(change[0]), _cut(change[1]))
        else:
            plain[str(field)] = (None, _cut(change))
    return plain


def _check_action(action: Any) -> str:
    if not isinstance(action, str) or not _ACTION.match(action):
        raise ValueError(
            f"an audit action is a dotted lower-case name such as 'task.run', got {action!r}; "
            f"the dashboard records {', '.join(AUDIT_ACTIONS)}"
        )
    return action


def _check_outcome(outcome: Any) -> str:
    if outcome not in AUDIT_OUTCOMES:
        raise ValueError(
            f"unknown audit outcome {outcome!r}; use one of {', '.join(AUDIT_OUTCOMES)}"
        )
    return str(outcome)


@attrs.frozen(kw_only=True)
class AuditRecord:
    """One management action taken through the dashboard.

    :var at: when (aware, UTC)
    :var action: the dotted action (``"task.create"``), see :data:`AUDIT_ACTIONS`
    :var label: its title (``"Task Create"``)
    :var task_id: the task acted on (for bulk actions, ``None``; the ids are in ``detail``)
    :var task_name: the task's name, if known
    :var user: who did it (the logged-in user's id or name), ``None`` without login
    :var outcome: one of :data:`AUDIT_OUTCOMES`
    :var detail: a message for the operator (what was done, or why it failed)
    :var changes: for updates, ``{field: (before, after)}`` as text
    """

    at: datetime = attrs.field(factory=lambda: datetime.now(UTC))
    action: str = attrs.field(validator=lambda _, __, value: _check_action(value))
    label: str = ""
    task_id: str | None = None
    task_name: str | None = None
    user: str | None = None
    outcome: str = attrs.field(default="ok", validator=lambda _, __, value: _check_outcome(value))
    detail: str | None = attrs.field(default=None, converter=_cut)
    changes: Mapping[str, tuple[str | None, str | None]] = attrs.field(
        factory=dict, converter=_plain_changes
    )

    def __attrs_post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", action_label(self.action))

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def outcome_label(self) -> str:
        return self.outcome.title()

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the time as an ISO 8601 string), for JSON output."""
        data = attrs.asdict(self)
        data["at"] = self.at.isoformat()
        data["changes"] = {k: list(v) for k, v in self.changes.items()}
        return data


def _matches(record: AuditRecord, needle: str) -> bool:
    texts = [
        record.action,
        record.label,
        record.task_id,
        record.task_name,
        record.user,
        record.outcome,
        record.detail,
        *record.changes,
    ]
    return any(text and needle in text.lower() for text in texts)


class MemoryAuditTrailStorage(BoundedRecords[AuditRecord]):
    """The newest ``maxlen`` audit records in memory, for this process only; thread-safe."""

    def record(
        self,
        action: str,
        *,
        task_id: str | None = None,
        task_name: str | None = None,
        user: Any = None,
        outcome: str = "ok",
        detail: str | None = None,
        changes: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        """Record an action; returns its record. ``user`` may be a user object (its ``id``,
        else its ``name``, is kept). ``ValueError`` for an action or outcome that is not valid.
        """
        entry = AuditRecord(
            action=action,
            task_id=str(task_id) if task_id is not None else None,
            task_name=task_name,
            user=_user_text(user),
            outcome=outcome,
            detail=detail,
            changes=changes,
        )
        self.append(entry)
        return entry

    def append(self, record: AuditRecord) -> None:
        """Keep a record made elsewhere."""
        if not isinstance(record, AuditRecord):
            raise TypeError(f"expected an AuditRecord, got {record!r}")
        self._keep(record)

    def query(
        self,
        action: str | None = None,
        task_id: str | None = None,
        q: str | None = None,
        limit: int = 200,
        *,
        outcome: str | None = None,
        user: str | None = None,
    ) -> list[AuditRecord]:
        """The newest records first, at most ``limit``, matching every filter given.

        ``q`` is searched, ignoring case, in the action, label, task id and name, user,
        outcome, detail and changed field names.
        """
        if action:
            _check_action(action)
        if outcome:
            _check_outcome(outcome)
        return self._newest(
            equal={"action": action, "task_id": task_id, "outcome": outcome, "user": user},
            q=q,
            matches=_matches,
            limit=limit,
        )


def _user_text(user: Any) -> str | None:
    if user is None or isinstance(user, str):
        return user or None
    for attribute in ("id", "name", "username"):
        value = getattr(user, attribute, None)
        if value:
            return str(value)
    return str(user)


_defaults: ProcessDefault[Any] = ProcessDefault(
    "an audit storage", MemoryAuditTrailStorage, ("record", "query")
)


def get_audit_storage(storage: Any = None) -> Any:
    """The process-wide default audit storage; passing ``storage`` makes it the default.

    The first call without one creates a :class:`MemoryAuditTrailStorage`.
    """
    return _defaults.get(storage)

"""The remote control of a scheduler: a JSON app for the worker that runs it, and a client for
the process that serves the dashboard.

Here: :func:`create_remote_scheduler_app` (a Lilya app to mount in the worker),
:class:`RemoteSchedulerClient` (the dashboard's scheduler when the scheduler lives elsewhere), the
JSON form of the snapshot classes they exchange, and the errors.

Nothing a request carries is unpickled or evaluated. A request is a JSON object (at most
``max_body_bytes``); the callable of a new task is a ``"module:qualname"`` reference that the
worker's :class:`~asyncz.contrib.dashboard.callables.CallablePolicy` must allow before it is
imported; a trigger is its plugin alias plus plain JSON keyword arguments, validated by the
trigger itself. With a token configured, every request must carry ``Authorization: Bearer
<token>`` (compared in constant time), or it is refused with 401 before its body is read.

Endpoints (paths relative to where the app is mounted; task ids travel in the query string or the
body, never in the path, so any id works)::

    GET  /scheduler                  get_scheduler_info()
    GET  /instances                  get_scheduler_instance_infos()
    GET  /tasks                      get_task_infos(store, schedule_state, executor, trigger, q,
                                                    sort_by, descending)
    POST /tasks                      add_task(callable, trigger, trigger_args, id, name, args,
                                              kwargs, executor, store, coalesce, max_instances,
                                              mistrigger_grace_time, next_run_time, timeout,
                                              on_crash, replace_existing)
    GET  /task?id=&store=            get_task_info()                          404 when none
    GET  /task/preview?id=&store=&count=&now=   preview_task_runs()           404 when none
    POST /task/update                {id, store, changes}
    POST /task/reschedule            {id, store, trigger, trigger_args}
    POST /task/pause                 {id, store}
    POST /task/resume                {id, store}            data null: the task was removed
    POST /task/run                   {id, store, force, remove_finished}   null: removed
    POST /task/delete                {id, store}
    GET  /runs?task_id=&store=&limit=   get_task_runs()

A success answers ``{"data": ...}``; a failure ``{"error": {"kind": ..., "message": ...}}`` with
400 (invalid), 401 (token), 403 (callable refused), 404 (no such task or alias), 409 (conflict,
not running, max instances), 413 (body too large), 415 (body not JSON) or 500.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import types
import typing
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, tzinfo
from enum import Enum
from typing import Any, Literal, Union
from urllib.parse import parse_qsl, urlencode, urlsplit

import anyio.to_thread
import attrs
from lilya.apps import Lilya
from lilya.exceptions import HTTPException
from lilya.requests import Request
from lilya.responses import Response
from lilya.routing import Path

from asyncz.contrib.dashboard.callables import (
    CallableNotAllowed,
    CallableNotFound,
    CallablePolicy,
    as_policy,
)
from asyncz.core import events
from asyncz.core.converters import obj_to_ref
from asyncz.core.runs import RunRecord
from asyncz.core.scheduler_common import SchedulerInfo, SchedulerInstanceInfo, undefined
from asyncz.core.task import Task, TaskInfo, TaskRunPreview
from asyncz.exceptions import (
    AsynczException,
    ConflictIdError,
    MaximumInstancesError,
    SchedulerNotRunningError,
    TaskConflictError,
    TaskLookupError,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "RemoteCallableNotAllowed",
    "RemoteLookupError",
    "RemoteRequestError",
    "RemoteSchedulerClient",
    "RemoteSchedulerError",
    "RemoteTask",
    "Transport",
    "UrllibTransport",
    "create_remote_scheduler_app",
    "from_wire",
    "to_wire",
]

logger = logging.getLogger("asyncz.contrib.dashboard.remote")

#: Largest request body the control app reads (1 MiB); more is refused with 413.
DEFAULT_MAX_BODY_BYTES = 1 << 20
#: Largest answer the default transport reads (a listing of many tasks can be several MiB).
MAX_RESPONSE_BYTES = 64 << 20

#: **Protocol**: ``transport(method, path, payload, headers, query) -> (status, json_object)``.
#: ``path`` is relative to the control app (``"/tasks"``), ``payload`` the JSON object to send
#: as the body (or ``None``), ``query`` the query parameters as strings (or ``None``).
Transport = Callable[
    [str, str, dict[str, Any] | None, dict[str, str], dict[str, Any] | None],
    tuple[int, dict[str, Any]],
]


# -- errors --------------------------------------------------------------------------------


class RemoteSchedulerError(Exception):
    """The remote scheduler could not be reached, refused the request or failed.

    Errors the local scheduler would raise come back as the same classes where asyncz has one
    (:class:`~asyncz.exceptions.TaskLookupError`, ``ConflictIdError``,
    ``MaximumInstancesError``, ``SchedulerNotRunningError``, caused by a
    :class:`RemoteSchedulerError`); the others are this class or one of its subclasses::

        RemoteSchedulerError                  unreachable, 401 (token), 409, 500, a bad answer
        ├── RemoteRequestError (ValueError)   400, 413, 415: the request was invalid
        ├── RemoteCallableNotAllowed          403: the worker's callable policy refused it
        │                                     (also a CallableNotAllowed)
        └── RemoteLookupError (KeyError)      404: no store or executor with that alias

    :var status: the HTTP status (``None``: no answer)
    :var kind: the error kind the worker named (``"unauthorized"``, ``"invalid"``, ...)
    :var message: what went wrong, as the worker said it
    """

    def __init__(self, message: str, *, status: int | None = None, kind: str | None = None):
        Exception.__init__(self, message)
        self.message = message
        self.status = status
        self.kind = kind

    def __str__(self) -> str:
        return self.message


class RemoteRequestError(RemoteSchedulerError, ValueError):
    """The worker refused the request as invalid (a bad trigger argument, task field, body)."""


class RemoteCallableNotAllowed(RemoteSchedulerError, CallableNotAllowed):
    """The worker's callable policy refused the reference (nothing was imported there)."""

    reference: object = None


class RemoteLookupError(RemoteSchedulerError, KeyError):
    """No store or executor with the alias given exists on the worker."""


class _Refusal(Exception):
    """Raised by the app's handlers: answer ``status`` with this error."""

    def __init__(self, status: int, kind: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.extra = extra


# -- the JSON form of the snapshot classes ---------------------------------------------------


@attrs.frozen(kw_only=True)
class RemoteTask(TaskInfo):
    """A task as a remote scheduler's task methods return it: its :class:`TaskInfo` fields plus
    ``args`` and ``kwargs`` (values that are not JSON come back as their ``repr``)."""

    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = attrs.field(factory=dict)

    @property
    def info(self) -> TaskInfo:
        """The same task as a plain :class:`TaskInfo`."""
        return TaskInfo(**{f.name: getattr(self, f.name) for f in attrs.fields(TaskInfo)})


#: The classes that cross the wire; a class name from the wire never chooses one.
_WIRE_CLASSES = (TaskInfo, TaskRunPreview, SchedulerInfo, SchedulerInstanceInfo, RunRecord)


def to_wire(obj: Any) -> dict[str, Any]:
    """An attrs snapshot (:class:`TaskInfo`, :class:`TaskRunPreview`, ``SchedulerInfo``,
    ``SchedulerInstanceInfo``, ``RunRecord``) as a JSON object: datetimes as ISO 8601 with their
    offset, enums by value, tuples as lists."""
    if not attrs.has(type(obj)):
        raise TypeError(f"to_wire() takes an attrs snapshot, got {type(obj).__name__}")
    encoded = _encode(obj)
    assert isinstance(encoded, dict)
    return encoded


def _encode(value: Any) -> Any:
    if attrs.has(type(value)):
        return {f.name: _encode(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, Enum):  # before str and int: TaskScheduleState is a str
        return _encode(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_encode(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _encode(item) for key, item in value.items()}
    raise TypeError(f"{type(value).__name__} value {value!r} has no JSON form")


def _plain(value: Any, depth: int = 0) -> Any:
    """Task arguments as JSON for an answer: JSON values as they are, anything else its repr."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth < 20 and isinstance(value, (list, tuple)):
        return [_plain(item, depth + 1) for item in value]
    if depth < 20 and isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {key: _plain(item, depth + 1) for key, item in value.items()}
    return repr(value)


class _BadWire(Exception):
    pass


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    """The resolved field types of ``cls`` (worked out once per class)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def from_wire(cls: type[Any], data: Any) -> Any:
    """The ``cls`` instance ``data`` (what :func:`to_wire` made) describes; fields it lacks take
    their defaults, fields ``cls`` does not have are ignored. ``ValueError`` when a value does not
    fit its field."""
    try:
        return _decode_attrs(cls, data, cls.__name__)
    except _BadWire as exc:
        raise ValueError(str(exc)) from None


def _decode_attrs(cls: type[Any], data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise _BadWire(f"{where}: expected a JSON object, got {type(data).__name__}")
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if field.name in data:
            values[field.name] = _decode(
                hints[field.name], data[field.name], f"{where}.{field.name}"
            )
        elif field.default is attrs.NOTHING:
            raise _BadWire(f"{where}: the field {field.name!r} is missing")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise _BadWire(f"{where}: {exc}") from None


def _decode(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin is Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        others = [arg for arg in args if arg is not type(None)]
        if len(others) == 1:
            return _decode(others[0], value, where)
    elif origin is Literal:
        if value in args:
            return value
    elif origin is tuple:
        if isinstance(value, list) and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], item, f"{where}[{i}]") for i, item in enumerate(value))
    elif origin in (dict, Mapping):
        if isinstance(value, dict):
            return {key: _decode(args[1], item, f"{where}[{key!r}]") for key, item in value.items()}
    elif isinstance(hint, type):
        if attrs.has(hint):
            return _decode_attrs(hint, value, where)
        if issubclass(hint, Enum):
            try:
                return hint(value)
            except ValueError:
                pass
        elif hint is datetime:
            if isinstance(value, str):
                try:
                    return datetime.fromisoformat(value)
                except ValueError:
                    pass
        elif hint is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif hint is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif hint in (bool, str) and isinstance(value, hint):
            return value
    raise _BadWire(f"{where}: {value!r} is not a valid {hint}")


# -- the worker's app ------------------------------------------------------------------------

#: What ``POST /task/update`` may change (a new trigger goes through /task/reschedule).
_CHANGEABLE = frozenset(
    {
        "name",
        "fn",
        "args",
        "kwargs",
        "executor",
        "coalesce",
        "max_instances",
        "mistrigger_grace_time",
        "timeout",
        "on_crash",
        "next_run_time",
    }
)
#: Task options of ``POST /tasks`` besides the callable and the trigger.
_ADD_OPTIONS = (
    "id",
    "name",
    "args",
    "kwargs",
    "executor",
    "store",
    "coalesce",
    "max_instances",
    "mistrigger_grace_time",
    "next_run_time",
    "timeout",
    "on_crash",
    "replace_existing",
)
#: Names a trigger argument may not have: add_task's own parameters.
_ADD_TASK_PARAMETERS = frozenset({*_ADD_OPTIONS, "fn", "fn_or_task", "trigger"})
#: The query parameters of ``GET /tasks``.
_LIST_QUERY = ("store", "schedule_state", "executor", "trigger", "q", "sort_by", "descending")
_SECURITY_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff"}


def _json_response(status: int, content: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")
    return Response(
        body,
        status_code=status,
        headers={**_SECURITY_HEADERS, **(headers or {})},
        media_type="application/json",
    )


def _error_response(refusal: _Refusal) -> Response:
    error = {"kind": refusal.kind, "message": refusal.message, **refusal.extra}
    headers = {"www-authenticate": "Bearer"} if refusal.status == 401 else None
    return _json_response(refusal.status, {"error": error}, headers)


def _header(request: Request, name: bytes) -> bytes | None:
    """A request header's raw value (the first one), read from the ASGI scope: Lilya's own
    header object decodes values as UTF-8 and fails on any other bytes."""
    headers = request.scope.get("headers") or ()
    if isinstance(headers, (list, tuple)):
        for key, value in headers:
            if isinstance(key, bytes) and key.lower() == name and isinstance(value, bytes):
                return value
        return None
    value = headers.get(name.decode("ascii"))  # already turned into Lilya's header object
    return value.encode("utf-8") if isinstance(value, str) else None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _invalid(message: str) -> _Refusal:
    return _Refusal(400, "invalid", message)


def _field(body: Mapping[str, Any], name: str, kinds: tuple[type, ...], what: str) -> Any:
    """``body[name]`` (None when absent) if it is one of ``kinds``, else 400."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool)):
        return value
    raise _invalid(f"{name!r} must be {what}, got {type(value).__name__}")


def _str_keys(value: dict[str, Any], name: str) -> dict[str, Any]:
    for key in value:
        if not key:
            raise _invalid(f"{name!r} has an empty key")
    return value


class _ControlApp:
    """The handlers of :func:`create_remote_scheduler_app`, around one scheduler."""

    def __init__(
        self, scheduler: Any, token: str | None, policy: CallablePolicy, max_body_bytes: int
    ) -> None:
        self.scheduler = scheduler
        self.policy = policy
        self.max_body_bytes = max_body_bytes
        self._token = None if token is None else token.encode("utf-8")

    def routes(self) -> list[Path]:
        table: list[tuple[str, str, Callable[..., Any], tuple[str, ...] | None]] = [
            # method, path, handler, query parameters (None: a body instead)
            ("GET", "/scheduler", self.scheduler_info, ()),
            ("GET", "/instances", self.instances, ()),
            ("GET", "/tasks", self.task_infos, _LIST_QUERY),
            ("POST", "/tasks", self.add_task, None),
            ("GET", "/task", self.task_info, ("id", "store")),
            ("GET", "/task/preview", self.preview, ("id", "store", "count", "now")),
            ("POST", "/task/update", self.update_task, None),
            ("POST", "/task/reschedule", self.reschedule_task, None),
            ("POST", "/task/pause", self.pause_task, None),
            ("POST", "/task/resume", self.resume_task, None),
            ("POST", "/task/run", self.run_task, None),
            ("POST", "/task/delete", self.delete_task, None),
            ("GET", "/runs", self.task_runs, ("task_id", "store", "limit")),
        ]
        by_path: dict[str, dict[str, tuple[Callable[..., Any], tuple[str, ...] | None]]] = {}
        for method, path, handler, query in table:
            by_path.setdefault(path, {})[method] = (handler, query)
        return [
            Path(path, self._endpoint(methods), methods=sorted(methods))
            for path, methods in by_path.items()
        ]

    def _endpoint(
        self, methods: dict[str, tuple[Callable[..., Any], tuple[str, ...] | None]]
    ) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            handler, query_names = methods[request.method]
            try:
                self._authorize(request)
                if query_names is None:
                    arguments = await self._read_body(request)
                else:
                    arguments = self._read_query(request, query_names)
                data = await anyio.to_thread.run_sync(self._call, handler, arguments)
            except _Refusal as refusal:
                return _error_response(refusal)
            return _json_response(200, {"data": data})

        return endpoint

    # -- the request's edges ---------------------------------------------------------------

    def _authorize(self, request: Request) -> None:
        if self._token is None:
            return
        scheme, _, given = (_header(request, b"authorization") or b"").strip().partition(b" ")
        # Bytes throughout: a header that is not UTF-8 is merely wrong, not an error.
        if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self._token):
            raise _Refusal(
                401,
                "unauthorized",
                "this remote scheduler needs 'Authorization: Bearer <token>' with its token",
            )

    async def _read_body(self, request: Request) -> dict[str, Any]:
        too_large = _Refusal(
            413, "too_large", f"the request body is larger than {self.max_body_bytes} bytes"
        )
        declared = (_header(request, b"content-length") or b"").strip()
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise too_large
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw:
            return {}
        content_type = (_header(request, b"content-type") or b"").decode("latin-1")
        media_type = content_type.partition(";")[0]
        if media_type.strip().lower() != "application/json":
            raise _Refusal(
                415,
                "unsupported_media_type",
                f"the request body must be application/json, got {media_type.strip()!r}",
            )
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise _invalid(f"the request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise _invalid(f"the request body must be a JSON object, got {type(data).__name__}")
        return data

    def _read_query(self, request: Request, names: tuple[str, ...]) -> dict[str, Any]:
        raw = request.scope.get("query_string", b"").decode("latin-1")
        try:
            pairs = parse_qsl(raw, keep_blank_values=True, max_num_fields=len(names) + 1)
        except ValueError as exc:
            raise _invalid(f"too many query parameters: {exc}") from None
        query: dict[str, Any] = {}
        for name, value in pairs:
            if name not in names:
                valid = ", ".join(names) or "none"
                raise _invalid(f"unknown query parameter {name!r}; valid: {valid}")
            if name in query:
                raise _invalid(f"the query parameter {name!r} was given twice")
            query[name] = value
        return query

    def _call(self, handler: Callable[[dict[str, Any]], Any], arguments: dict[str, Any]) -> Any:
        """Run ``handler`` (in a worker thread: stores may block) and turn what the scheduler
        raises into the answer the local method's caller would understand."""
        try:
            return handler(arguments)
        except _Refusal:
            raise
        except CallableNotFound as exc:
            raise _Refusal(400, "callable_not_found", str(exc)) from None
        except CallableNotAllowed as exc:
            raise _Refusal(403, "callable_not_allowed", str(exc)) from None
        except TaskLookupError as exc:
            raise _Refusal(404, "task_not_found", str(exc), task_id=exc.task_id) from None
        except ConflictIdError as exc:
            raise _Refusal(409, "conflicting_id", str(exc), task_id=exc.task_id) from None
        except MaximumInstancesError as exc:
            raise _Refusal(
                409,
                "max_instances",
                str(exc),
                task_id=exc.task_id,
                max_instances=exc.max_instances,
            ) from None
        except SchedulerNotRunningError as exc:
            raise _Refusal(409, "not_running", str(exc)) from None
        except TaskConflictError as exc:
            raise _Refusal(409, "task_conflict", str(exc)) from None
        except KeyError as exc:  # lookup_store / lookup_executor: no such alias
            message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
            raise _Refusal(404, "not_found", message) from None
        except (ValueError, TypeError, LookupError, AsynczException) as exc:
            raise _Refusal(400, "invalid", str(exc) or type(exc).__name__) from None
        except Exception:
            logger.exception("The remote scheduler control failed in %s", handler.__name__)
            raise _Refusal(
                500, "internal", "the remote scheduler failed; the worker's log has the details"
            ) from None

    # -- arguments -------------------------------------------------------------------------

    @staticmethod
    def _only(body: Mapping[str, Any], names: Iterable[str]) -> None:
        allowed = set(names)
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise _invalid(
                f"unknown field(s) {', '.join(map(repr, unknown))}; valid: "
                f"{', '.join(sorted(allowed))}"
            )

    @staticmethod
    def _task_id(arguments: Mapping[str, Any]) -> str:
        task_id = arguments.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise _invalid(f"'id' must be a non-empty task id string, got {task_id!r}")
        return task_id

    @staticmethod
    def _store(arguments: Mapping[str, Any]) -> str | None:
        store = arguments.get("store")
        if store is None or store == "":
            return None
        if not isinstance(store, str):
            raise _invalid(f"'store' must be a store alias string, got {type(store).__name__}")
        return store

    @staticmethod
    def _flag(arguments: Mapping[str, Any], name: str, default: bool) -> bool:
        value = arguments.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
            return value.lower() in ("true", "1")
        raise _invalid(f"{name!r} must be true or false, got {value!r}")

    @staticmethod
    def _trigger(body: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
        trigger = _field(body, "trigger", (str,), "a trigger alias such as 'interval'")
        trigger_args = _field(body, "trigger_args", (dict,), "an object of trigger arguments")
        trigger_args = _str_keys(trigger_args or {}, "trigger_args")
        clashes = sorted(_ADD_TASK_PARAMETERS.intersection(trigger_args))
        if clashes:
            raise _invalid(
                f"trigger_args may not contain {', '.join(map(repr, clashes))}: those are task "
                "options, given beside trigger_args"
            )
        return trigger, trigger_args

    @staticmethod
    def _task_data(task: Task | None) -> dict[str, Any] | None:
        if task is None:
            return None
        return {
            "task": to_wire(task.snapshot()),
            "args": _plain(task.args),
            "kwargs": _plain(task.kwargs),
        }

    # -- the handlers (run in a worker thread) -----------------------------------------------

    def scheduler_info(self, _: dict[str, Any]) -> Any:
        return to_wire(self.scheduler.get_scheduler_info())

    def instances(self, _: dict[str, Any]) -> Any:
        return [to_wire(info) for info in self.scheduler.get_scheduler_instance_infos()]

    def task_infos(self, query: dict[str, Any]) -> Any:
        filters = ("schedule_state", "executor", "trigger", "q")
        options = {name: query[name] for name in filters if query.get(name)}
        infos = self.scheduler.get_task_infos(
            self._store(query),
            sort_by=query.get("sort_by") or "next_run_time",
            descending=self._flag(query, "descending", False),
            **options,
        )
        return [to_wire(info) for info in infos]

    def task_info(self, query: dict[str, Any]) -> Any:
        task_id = self._task_id(query)
        info = self.scheduler.get_task_info(task_id, self._store(query))
        if info is None:
            raise TaskLookupError(task_id, self._store(query))
        return to_wire(info)

    def preview(self, query: dict[str, Any]) -> Any:
        task_id, store = self._task_id(query), self._store(query)
        count_text = query.get("count") or "5"
        try:
            count = int(count_text)
        except ValueError:
            raise _invalid(f"'count' must be an integer, got {count_text!r}") from None
        now = None
        if query.get("now"):
            try:
                now = datetime.fromisoformat(query["now"])
            except ValueError:
                raise _invalid(f"'now' must be an ISO 8601 time, got {query['now']!r}") from None
        preview = self.scheduler.preview_task_runs(task_id, store, count=count, now=now)
        if preview is None:
            raise TaskLookupError(task_id, store)
        return to_wire(preview)

    def task_runs(self, query: dict[str, Any]) -> Any:
        limit_text = query.get("limit") or "50"
        try:
            limit = int(limit_text)
        except ValueError:
            raise _invalid(f"'limit' must be an integer, got {limit_text!r}") from None
        records = self.scheduler.get_task_runs(
            query.get("task_id") or None, self._store(query), limit
        )
        return [to_wire(record) for record in records]

    def add_task(self, body: dict[str, Any]) -> Any:
        self._only(body, ("callable", "trigger", "trigger_args", *_ADD_OPTIONS))
        reference = body.get("callable")
        if not isinstance(reference, str):
            raise _invalid(
                "'callable' must be a 'module:qualname' reference string, got "
                f"{type(reference).__name__}"
            )
        trigger, trigger_args = self._trigger(body)
        options = {name: body[name] for name in _ADD_OPTIONS if name in body}
        for name, kind, what in (
            ("args", (list,), "a list"),
            ("kwargs", (dict,), "an object"),
            ("replace_existing", (bool,), "true or false"),
        ):
            _field(options, name, kind, what)
        if options.get("replace_existing") is None:
            options.pop("replace_existing", None)
        fn = self.policy.resolve(reference)  # refused before anything reaches the scheduler
        task = self.scheduler.add_task(fn, trigger, **options, **trigger_args)
        return self._task_data(task)

    def update_task(self, body: dict[str, Any]) -> Any:
        self._only(body, ("id", "store", "changes"))
        task_id, store = self._task_id(body), self._store(body)
        changes = _field(body, "changes", (dict,), "an object of task fields")
        if not changes:
            raise _invalid(f"'changes' must name at least one of: {', '.join(sorted(_CHANGEABLE))}")
        if "trigger" in changes:
            raise _invalid("a trigger is changed through /task/reschedule (reschedule_task)")
        self._only(changes, _CHANGEABLE)
        changes = dict(changes)
        if "fn" in changes:
            changes["fn"] = self.policy.resolve(changes["fn"])
        return self._task_data(self.scheduler.update_task(task_id, store, **changes))

    def reschedule_task(self, body: dict[str, Any]) -> Any:
        self._only(body, ("id", "store", "trigger", "trigger_args"))
        task_id, store = self._task_id(body), self._store(body)
        trigger, trigger_args = self._trigger(body)
        return self._task_data(
            self.scheduler.reschedule_task(task_id, store, trigger, **trigger_args)
        )

    def pause_task(self, body: dict[str, Any]) -> Any:
        self._only(body, ("id", "store"))
        return self._task_data(self.scheduler.pause_task(self._task_id(body), self._store(body)))

    def resume_task(self, body: dict[str, Any]) -> Any:
        self._only(body, ("id", "store"))
        return self._task_data(self.scheduler.resume_task(self._task_id(body), self._store(body)))

    def run_task(self, body: dict[str, Any]) -> Any:
        self._only(body, ("id", "store", "force", "remove_finished"))
        task = self.scheduler.run_task(
            self._task_id(body),
            self._store(body),
            force=self._flag(body, "force", True),
            remove_finished=self._flag(body, "remove_finished", True),
        )
        return self._task_data(task)

    def delete_task(self, body: dict[str, Any]) -> Any:
        self._only(body, ("id", "store"))
        task_id = self._task_id(body)
        self.scheduler.delete_task(task_id, self._store(body))
        return {"id": task_id}


def _check_token(token: object, who: str) -> str | None:
    if token is None:
        return None
    if not isinstance(token, str):
        raise TypeError(f"{who} token must be a string or None, got {type(token).__name__}")
    if not token or any(char.isspace() for char in token) or not token.isprintable():
        # Not echoed: it is a secret.
        raise ValueError(f"{who} token must be a non-empty string without spaces")
    return token


def create_remote_scheduler_app(
    scheduler: Any,
    token: str | None = None,
    allowed_callables: CallablePolicy | Iterable[str] | None = None,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Lilya:
    """A Lilya app of JSON endpoints that controls ``scheduler`` (see the module docstring).

    :param token: the shared secret every request must carry as ``Authorization: Bearer
        <token>``; ``None`` leaves the app unauthenticated (a warning is logged): then only a
        private network stands between it and anyone who can reach it
    :param allowed_callables: which callables new tasks may name: a
        :class:`~asyncz.contrib.dashboard.callables.CallablePolicy` or its patterns; ``None``
        allows application code only
    :param max_body_bytes: larger request bodies are refused with 413
    """
    checked = _check_token(token, "the remote scheduler's")
    if (
        isinstance(max_body_bytes, bool)
        or not isinstance(max_body_bytes, int)
        or max_body_bytes < 1
    ):
        raise ValueError(f"max_body_bytes must be a positive integer, got {max_body_bytes!r}")
    if checked is None:
        logger.warning(
            "The asyncz remote scheduler control app was created without a token: anyone who "
            "can reach it can add, change, run and delete tasks; pass token=... and keep it on "
            "a private network"
        )
    control = _ControlApp(scheduler, checked, as_policy(allowed_callables), max_body_bytes)

    def unrouted(request: Request, exc: Exception) -> Response:
        status = 500
        if isinstance(exc, HTTPException) and isinstance(exc.status_code, int):
            status = exc.status_code
        if status >= 500:
            logger.error("The remote scheduler control app failed", exc_info=exc)
            message = "the remote scheduler failed; the worker's log has the details"
        elif status == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = f"no remote scheduler endpoint at {request.url.path}"
        kind = {404: "not_found", 405: "method_not_allowed"}.get(status, "internal")
        return _error_response(_Refusal(status, kind, message))

    return Lilya(
        routes=control.routes(),
        exception_handlers={HTTPException: unrouted, Exception: unrouted},
    )


# -- the dashboard's client ------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the token elsewhere: answer it as it is (an error)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class UrllibTransport:
    """The default :data:`Transport`: HTTP(S) with :mod:`urllib.request` to ``base_url``.

    Blocking (call the client from a worker thread in async code); redirects are not followed,
    so the token only ever goes to ``base_url``."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url) if isinstance(base_url, str) else None
        if (
            parts is None
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.query
            or parts.fragment
            or parts.username is not None
        ):
            raise ValueError(
                f"base_url must be an http:// or https:// URL of the mounted control app, without "
                f"credentials, query or fragment, such as 'http://worker:8000/asyncz-remote'; got "
                f"{base_url!r}"
            )
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self._opener = urllib.request.build_opener(_NoRedirects)

    def __repr__(self) -> str:
        return f"UrllibTransport({self.base_url!r}, timeout={self.timeout})"

    def __call__(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None,
        headers: dict[str, str],
        query: dict[str, Any] | None,
    ) -> tuple[int, dict[str, Any]]:
        url = self.base_url + path
        if query:
            url += "?" + urlencode(query)
        sent = {"Accept": "application/json", **headers}
        data = None
        if payload is not None:
            data = json.dumps(payload, allow_nan=False).encode("utf-8")
            sent["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=sent, method=method)
        try:
            response = self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            response = exc  # an error status: its body says why
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RemoteSchedulerError(
                f"cannot reach the remote scheduler at {self.base_url}: {reason}"
            ) from exc
        status = int(getattr(response, "status", None) or response.code)
        try:
            with response:
                raw = response.read(MAX_RESPONSE_BYTES + 1)
        except (OSError, AttributeError, ValueError) as exc:  # AttributeError: no body at all
            raise RemoteSchedulerError(
                f"the remote scheduler at {self.base_url} answered HTTP {status}, and its body "
                f"could not be read: {exc}",
                status=status,
            ) from exc
        if len(raw) > MAX_RESPONSE_BYTES:
            raise RemoteSchedulerError(
                f"the remote scheduler at {self.base_url} answered more than "
                f"{MAX_RESPONSE_BYTES} bytes",
                status=status,
            )
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise RemoteSchedulerError(
                f"the remote scheduler at {self.base_url} answered HTTP {status} without JSON "
                "(is base_url the mounted control app? redirects are not followed)",
                status=status,
            ) from None
        if not isinstance(body, dict):
            raise RemoteSchedulerError(
                f"the remote scheduler at {self.base_url} answered a JSON "
                f"{type(body).__name__}, not an object",
                status=status,
            )
        return status, body


def _json_value(value: Any, where: str, depth: int = 0) -> Any:
    """``value`` if JSON can carry it unchanged (tuples become lists), else ``TypeError``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
    elif depth < 50 and isinstance(value, (list, tuple)):
        return [_json_value(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    elif depth < 50 and isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _json_value(v, f"{where}[{k!r}]", depth + 1) for k, v in value.items()}
    raise TypeError(
        f"{where} is {value!r}, which a remote scheduler cannot receive: send only JSON values "
        "(str, int, finite float, bool, None, lists, and dicts with string keys)"
    )


def _trigger_value(value: Any, where: str) -> Any:
    """A trigger argument as JSON: times as ISO 8601 (triggers read those), zones by name."""
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, tzinfo):
        name = getattr(value, "key", None) or getattr(value, "zone", None)
        if isinstance(name, str):
            return name
    return _json_value(value, where)


def _time_value(value: Any, where: str) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{where} must be a datetime, an ISO 8601 string or None, got {value!r}")


def _reference(fn: Any) -> str:
    if isinstance(fn, str):
        return fn
    if isinstance(fn, Task):
        raise TypeError(
            "a remote scheduler cannot receive a Task object; pass its callable reference "
            "('module:qualname') and its options"
        )
    if callable(fn):
        return obj_to_ref(fn)  # ValueError for lambdas, partials and nested functions
    raise TypeError(f"add_task() needs a callable or a 'module:qualname' reference, got {fn!r}")


def _trigger_alias(trigger: Any) -> str | None:
    if trigger is None or isinstance(trigger, str):
        return trigger
    raise TypeError(
        f"a remote scheduler takes a trigger alias and plain keyword arguments (such as "
        f"trigger='interval', seconds=5), not a trigger object; got {trigger!r}"
    )


def _query(**values: Any) -> dict[str, str]:
    query: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            query[name] = "true" if value else "false"
        elif isinstance(value, datetime):
            query[name] = value.isoformat()
        else:
            query[name] = str(value)
    return query


class RemoteSchedulerClient:
    """A scheduler in another process, driven through its control app
    (:func:`create_remote_scheduler_app`), with the methods the dashboard calls.

    The methods take the local scheduler's arguments and return its types (:class:`TaskInfo`,
    :class:`TaskRunPreview`, ``SchedulerInfo``, ``SchedulerInstanceInfo``, ``RunRecord``), built
    from the JSON answer; task methods return a :class:`RemoteTask`. They raise what the local
    method would (``TaskLookupError``, ``ValueError`` for a bad argument, ...) or
    :class:`RemoteSchedulerError`. They block: from async code, call them in a worker thread.

    :param base_url: where the control app is mounted, such as
        ``"http://worker:8000/asyncz-remote"`` (for the default transport)
    :param token: the control app's token, sent as ``Authorization: Bearer <token>``
    :param transport: a :data:`Transport` to use instead of HTTP (tests, other clients)
    :param timeout: seconds the default transport waits for an answer
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        transport: Transport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.token = _check_token(token, "the remote scheduler client's")
        if transport is None:
            if base_url is None:
                raise ValueError(
                    "RemoteSchedulerClient needs base_url (the mounted control app's URL, such "
                    "as 'http://worker:8000/asyncz-remote') or a transport"
                )
            transport = UrllibTransport(base_url, timeout)
        elif not callable(transport):
            raise TypeError(f"transport must be callable, got {transport!r}")
        self.base_url = base_url
        self.transport: Transport = transport
        self._identity: str | None = None

    def __repr__(self) -> str:
        where = self.base_url if self.base_url is not None else repr(self.transport)
        return f"<RemoteSchedulerClient {where}>"

    # -- the exchange ----------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        payload: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
        store: str | None = None,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        status, body = self.transport(method, path, payload, headers, query)
        if 200 <= status < 300 and isinstance(body, dict) and "data" in body:
            return body["data"]
        raise self._failure(status, body, store)

    def _failure(self, status: int, body: Any, store: str | None) -> Exception:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            return RemoteSchedulerError(
                f"the remote scheduler answered HTTP {status} without a usable body",
                status=status,
            )
        message, kind = error["message"], error.get("kind")
        remote = RemoteSchedulerError(message, status=status, kind=kind)
        task_id = error.get("task_id")
        local: Exception | None = None
        if kind == "task_not_found" and isinstance(task_id, str):
            local = TaskLookupError(task_id, store)
        elif kind == "conflicting_id" and isinstance(task_id, str):
            local = ConflictIdError(task_id)
        elif kind == "max_instances" and isinstance(task_id, str):
            limit = error.get("max_instances")
            local = MaximumInstancesError(task_id, limit if isinstance(limit, int) else 1)
        elif kind == "not_running":
            local = SchedulerNotRunningError(message)
        elif kind == "callable_not_allowed":
            return RemoteCallableNotAllowed(message, status=status, kind=kind)
        elif status in (400, 413, 415):
            return RemoteRequestError(message, status=status, kind=kind)
        elif kind == "not_found" and status == 404:
            return RemoteLookupError(message, status=status, kind=kind)
        elif status == 401:
            return RemoteSchedulerError(
                f"the remote scheduler refused the token: {message}", status=status, kind=kind
            )
        if local is None:
            return remote
        local.__cause__ = remote
        return local

    def _task(self, data: Any) -> RemoteTask | None:
        if data is None:
            return None
        if not isinstance(data, dict):
            raise RemoteSchedulerError(f"the remote scheduler answered a task as {data!r}")
        args, kwargs = data.get("args") or [], data.get("kwargs") or {}
        info = self._decode(TaskInfo, data.get("task"))
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise RemoteSchedulerError("the remote scheduler answered a task's arguments badly")
        fields = {f.name: getattr(info, f.name) for f in attrs.fields(TaskInfo)}
        return RemoteTask(**fields, args=tuple(args), kwargs=kwargs)

    @staticmethod
    def _decode(cls: type[Any], data: Any) -> Any:
        try:
            return from_wire(cls, data)
        except ValueError as exc:
            raise RemoteSchedulerError(f"the remote scheduler answered a bad {exc}") from None

    def _decode_list(self, cls: type[Any], data: Any) -> list[Any]:
        if not isinstance(data, list):
            raise RemoteSchedulerError(f"the remote scheduler answered {data!r}, not a list")
        return [self._decode(cls, item) for item in data]

    def _on_task(
        self, path: str, task_id: str, store: str | None, **fields: Any
    ) -> RemoteTask | None:
        payload = {"id": task_id, **({"store": store} if store is not None else {}), **fields}
        return self._task(self._request("POST", path, payload=payload, store=store))

    # -- the scheduler surface -------------------------------------------------------------

    @property
    def identity(self) -> str:
        """The remote scheduler's identity (asked once, then remembered)."""
        if self._identity is None:
            self._identity = self.get_scheduler_info().identity
        return self._identity

    def get_scheduler_info(self) -> SchedulerInfo:
        info: SchedulerInfo = self._decode(SchedulerInfo, self._request("GET", "/scheduler"))
        self._identity = info.identity
        return info

    def get_scheduler_instance_infos(self) -> tuple[SchedulerInstanceInfo, ...]:
        return tuple(self._decode_list(SchedulerInstanceInfo, self._request("GET", "/instances")))

    def get_task_infos(
        self,
        store: str | None = None,
        *,
        schedule_state: str | None = None,
        executor: str | None = None,
        trigger: str | None = None,
        q: str | None = None,
        sort_by: str = "next_run_time",
        descending: bool = False,
    ) -> list[TaskInfo]:
        query = _query(
            store=store,
            schedule_state=schedule_state,
            executor=executor,
            trigger=trigger,
            q=q,
            sort_by=sort_by,
            descending=descending,
        )
        return self._decode_list(TaskInfo, self._request("GET", "/tasks", query=query, store=store))

    def get_task_info(self, task_id: str, store: str | None = None) -> TaskInfo | None:
        try:
            data = self._request("GET", "/task", query=_query(id=task_id, store=store), store=store)
        except TaskLookupError:
            return None
        info: TaskInfo = self._decode(TaskInfo, data)
        return info

    def preview_task_runs(
        self,
        task_id: str,
        store: str | None = None,
        *,
        count: int = 5,
        now: datetime | None = None,
    ) -> TaskRunPreview | None:
        query = _query(id=task_id, store=store, count=count, now=now)
        try:
            data = self._request("GET", "/task/preview", query=query, store=store)
        except TaskLookupError:
            return None
        preview: TaskRunPreview = self._decode(TaskRunPreview, data)
        return preview

    def get_task_runs(
        self, task_id: str | None = None, store: str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        query = _query(task_id=task_id, store=store, limit=limit)
        return self._decode_list(RunRecord, self._request("GET", "/runs", query=query, store=store))

    def add_task(
        self,
        fn_or_task: Any = None,
        trigger: Any = None,
        args: Any = None,
        kwargs: Any = None,
        id: str | None = None,
        name: str | None = None,
        mistrigger_grace_time: Any = undefined,
        coalesce: Any = undefined,
        max_instances: Any = undefined,
        next_run_time: Any = undefined,
        store: str | None = None,
        executor: str | None = None,
        replace_existing: bool = False,
        timeout: Any = undefined,
        on_crash: Any = undefined,
        **trigger_args: Any,
    ) -> RemoteTask:
        """Add a task on the remote scheduler: ``fn_or_task`` is a ``"module:qualname"``
        reference (or a module-level callable, sent as its reference) that the worker's
        callable policy must allow; ``trigger`` an alias whose arguments are the remaining
        keyword arguments (JSON values; datetimes are sent as ISO 8601)."""
        if fn_or_task is None:
            raise TypeError(
                "a remote scheduler's add_task() needs the callable's 'module:qualname' "
                "reference (it has no decorator form)"
            )
        payload: dict[str, Any] = {
            "callable": _reference(fn_or_task),
            "trigger": _trigger_alias(trigger),
            "trigger_args": {
                key: _trigger_value(value, key) for key, value in trigger_args.items()
            },
            "replace_existing": replace_existing,
        }
        if args is not None:
            if isinstance(args, (str, bytes, Mapping)) or not isinstance(args, Iterable):
                raise TypeError(f"args must be a list or tuple, got {args!r}")
            payload["args"] = _json_value(list(args), "args")
        if kwargs is not None:
            payload["kwargs"] = _json_value(kwargs, "kwargs")
        for key, value in (("id", id), ("name", name), ("store", store), ("executor", executor)):
            if value is not None:
                payload[key] = value
        for key, value in (
            ("mistrigger_grace_time", mistrigger_grace_time),
            ("coalesce", coalesce),
            ("max_instances", max_instances),
            ("timeout", timeout),
            ("on_crash", on_crash),
        ):
            if value is not undefined:
                payload[key] = _json_value(value, key)
        if next_run_time is not undefined:
            payload["next_run_time"] = _time_value(next_run_time, "next_run_time")
        task = self._task(self._request("POST", "/tasks", payload=payload, store=store))
        assert task is not None
        return task

    def update_task(self, task_id: str, store: str | None = None, **changes: Any) -> RemoteTask:
        """Change fields of a remote task (JSON values; ``fn`` as a reference). A new trigger
        goes through :meth:`reschedule_task`."""
        if "trigger" in changes:
            raise TypeError(
                "a remote task's trigger is changed with reschedule_task(task_id, store, "
                "'interval', seconds=5), not update_task(trigger=...)"
            )
        sent: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "fn":
                sent[key] = _reference(value)
            elif key == "next_run_time":
                sent[key] = _time_value(value, key)
            else:
                sent[key] = _json_value(value, key)
        task = self._on_task("/task/update", task_id, store, changes=sent)
        assert task is not None
        return task

    def reschedule_task(
        self, task_id: str, store: str | None = None, trigger: Any = None, **trigger_args: Any
    ) -> RemoteTask:
        """Give a remote task a new trigger (an alias and its keyword arguments)."""
        task = self._on_task(
            "/task/reschedule",
            task_id,
            store,
            trigger=_trigger_alias(trigger),
            trigger_args={key: _trigger_value(value, key) for key, value in trigger_args.items()},
        )
        assert task is not None
        return task

    def pause_task(self, task_id: str, store: str | None = None) -> RemoteTask:
        task = self._on_task("/task/pause", task_id, store)
        assert task is not None
        return task

    def resume_task(self, task_id: str, store: str | None = None) -> RemoteTask | None:
        return self._on_task("/task/resume", task_id, store)

    def run_task(
        self,
        task_id: str,
        store: str | None = None,
        *,
        force: bool = True,
        remove_finished: bool = True,
    ) -> RemoteTask | None:
        return self._on_task(
            "/task/run", task_id, store, force=force, remove_finished=remove_finished
        )

    def delete_task(self, task_id: str, store: str | None = None) -> None:
        payload = {"id": task_id, **({"store": store} if store is not None else {})}
        self._request("POST", "/task/delete", payload=payload, store=store)

    def add_listener(self, callback: Callable[[Any], Any], mask: int = events.ALL_EVENTS) -> None:
        """Nothing: a remote scheduler's events stay in its own process (record them there)."""

    def remove_listener(self, callback: Callable[[Any], Any]) -> bool:
        return False

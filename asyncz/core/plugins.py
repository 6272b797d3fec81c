"""Plugin discovery and the registry of plugin aliases.

Plugins — ours and everybody else's — are found the same way: through the ``asyncz`` entry-point
group, once per registry, on first use. Each entry point names a module (or object) that
implements the hooks in :mod:`asyncz.core.hookspecs`. Each registration becomes a
:class:`Provider` that remembers which distribution made it, so that errors can say where an
alias comes from and two distributions claiming one alias is an error naming both.

A plugin that cannot be imported or that implements a hook wrongly is skipped with a warning and
listed in every later "unknown alias" error; it never stops the scheduler. Set
``ASYNCZ_DISABLE_PLUGINS=name,name`` to block plugins by entry-point name (or by distribution
name, blocking all of that distribution's entry points).

What does not live here: the plugins themselves (``asyncz/plugins/``) and the code that turns a
config dict into an instance (the scheduler does that with :meth:`PluginRegistry.resolve`).
"""

from __future__ import annotations

import difflib
import os
import threading
import warnings
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import attrs
import importlib_metadata
import pluggy

from asyncz.core import hookspecs
from asyncz.core.converters import ref_to_obj
from asyncz.core.errors import DuplicateAliasError, PluginLoadError, UnknownAliasError
from asyncz.core.extras import missing_dependency

__all__ = [
    "DISABLE_ENV",
    "ENTRY_POINT_GROUP",
    "HOOKS",
    "PluginFailure",
    "PluginRegistry",
    "PluginWarning",
    "Provider",
    "default_registry",
]

ENTRY_POINT_GROUP = "asyncz"
DISABLE_ENV = "ASYNCZ_DISABLE_PLUGINS"

#: plugin kind -> the hook that registers plugins of that kind
HOOKS: dict[str, str] = {
    "trigger": "asyncz_register_triggers",
    "store": "asyncz_register_stores",
    "executor": "asyncz_register_executors",
    "serializer": "asyncz_register_serializers",
}

_LOCAL_DISTRIBUTION = "(registered in code)"


class PluginWarning(RuntimeWarning):
    """A plugin was skipped because it could not be loaded or registered."""


class _EntryPoint(Protocol):
    """**Protocol**: the part of ``importlib_metadata.EntryPoint`` discovery uses."""

    @property
    def name(self) -> str: ...

    @property
    def dist(self) -> Any: ...

    def load(self) -> Any: ...


@attrs.frozen
class Provider:
    """One plugin alias and what provides it.

    :var kind: ``"trigger"``, ``"store"``, ``"executor"`` or ``"serializer"``
    :var alias: the plugin alias users write
    :var target: the class, or a lazy ``"module:Class"`` reference to it
    :var plugin: the name of the entry point (plugin) that registered it
    :var distribution: the name of the distribution that ships the plugin
    :var version: that distribution's version
    """

    kind: str
    alias: str
    target: Any
    plugin: str
    distribution: str
    version: str

    @property
    def source(self) -> str:
        """``"<distribution> <version>"``, as shown in messages and in ``asyncz plugins``."""
        return f"{self.distribution} {self.version}".strip()


@attrs.frozen
class PluginFailure:
    """A plugin that was skipped, and why."""

    plugin: str
    distribution: str
    version: str
    error: str

    @classmethod
    def of(cls, plugin: str, distribution: str, version: str, exc: BaseException) -> PluginFailure:
        return cls(plugin, distribution, version, f"{type(exc).__name__}: {exc}")

    def __str__(self) -> str:
        source = f"{self.distribution} {self.version}".strip()
        return f"{self.plugin!r} from {source}: {self.error}"


def _dist_info(entry_point: _EntryPoint) -> tuple[str, str]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return ("(unknown distribution)", "")
    name = getattr(dist, "name", None) or dist.metadata["Name"]
    return (str(name), str(getattr(dist, "version", "") or ""))


def _disabled_from_env() -> frozenset[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


class PluginRegistry:
    """The plugin aliases available to a scheduler, discovered once and on first use.

    :param group: the entry-point group to search
    :param disabled: entry-point or distribution names to skip; ``None`` reads
        ``ASYNCZ_DISABLE_PLUGINS`` at discovery time
    :param entry_points: where entry points come from (tests inject their own); by default
        ``importlib_metadata.entry_points(group=group)``
    """

    def __init__(
        self,
        *,
        group: str = ENTRY_POINT_GROUP,
        disabled: Iterable[str] | None = None,
        entry_points: Callable[[], Iterable[_EntryPoint]] | None = None,
    ) -> None:
        self.group = group
        self._disabled_arg = None if disabled is None else frozenset(disabled)
        self._entry_points = entry_points or (
            lambda: importlib_metadata.entry_points(group=self.group)
        )
        self._lock = threading.RLock()
        self._discovered = False
        self._manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._manager.add_hookspecs(hookspecs)
        self._providers: dict[tuple[str, str], Provider] = {}
        self._conflicts: dict[tuple[str, str], list[Provider]] = {}
        self._loaded: dict[tuple[str, str], type] = {}
        self._sources: dict[str, tuple[str, str]] = {}
        self.failures: list[PluginFailure] = []
        self.blocked: list[str] = []

    # -- discovery -------------------------------------------------------------------------

    def discover(self) -> None:
        """Find and register every plugin of the group; later calls do nothing.

        Raises :class:`DuplicateAliasError` (now and on every later call) when two plugins
        register the same alias for the same kind.
        """
        with self._lock:
            if not self._discovered:
                self._discovered = True
                disabled = (
                    self._disabled_arg if self._disabled_arg is not None else _disabled_from_env()
                )
                for entry_point in self._entry_points():
                    distribution, version = _dist_info(entry_point)
                    if entry_point.name in disabled or distribution in disabled:
                        self.blocked.append(entry_point.name)
                        continue
                    try:
                        plugin = entry_point.load()
                    except Exception as exc:
                        self._fail(PluginFailure.of(entry_point.name, distribution, version, exc))
                        continue
                    failure = self._add(plugin, entry_point.name, distribution, version)
                    if failure is not None:
                        self._fail(failure)
            self._raise_conflicts()

    def register(
        self,
        plugin: object,
        name: str,
        *,
        distribution: str = _LOCAL_DISTRIBUTION,
        version: str = "",
    ) -> None:
        """Register a plugin object that is not installed through an entry point.

        For applications that keep a plugin in their own code base, and for tests. Errors are
        raised, not turned into warnings: the caller is right here to see them.
        """
        with self._lock:
            self.discover()
            failure = self._add(plugin, name, distribution, version)
            if failure is not None:
                raise PluginLoadError(str(failure))
            self._raise_conflicts()

    def _add(
        self, plugin: object, name: str, distribution: str, version: str
    ) -> PluginFailure | None:
        """Register one plugin's hooks and aliases, all or nothing; the failure, if any."""
        try:
            self._manager.register(plugin, name=name)
        except Exception as exc:
            return PluginFailure.of(name, distribution, version, exc)
        try:
            # A hook whose name has a typo would otherwise be ignored without a word.
            self._manager.check_pending()
        except pluggy.PluginValidationError as exc:
            self._manager.unregister(plugin)
            return PluginFailure.of(name, distribution, version, exc)
        self._sources[name] = (distribution, version)
        staged: list[Provider] = []
        try:
            for kind, hook_name in HOOKS.items():
                for impl in getattr(self._manager.hook, hook_name).get_hookimpls():
                    if impl.plugin_name != name:
                        continue

                    def register(alias: str, target: Any, _kind: str = kind) -> None:
                        staged.append(self._provider(_kind, alias, target, name))

                    kwargs = {"register": register} if "register" in impl.argnames else {}
                    impl.function(**kwargs)
        except Exception as exc:
            # All or nothing: a plugin half-registered would be harder to reason about.
            self._manager.unregister(plugin)
            return PluginFailure.of(name, distribution, version, exc)
        for provider in staged:
            key = (provider.kind, provider.alias)
            existing = self._providers.get(key)
            if existing is None:
                self._providers[key] = provider
            else:
                self._conflicts.setdefault(key, [existing]).append(provider)
        return None

    def _provider(self, kind: str, alias: str, target: Any, plugin: str) -> Provider:
        if not isinstance(alias, str) or not alias.strip():
            raise TypeError(f"a {kind} plugin alias must be a non-empty string, got {alias!r}")
        if not (isinstance(target, (type, str)) or callable(target)):
            raise TypeError(
                f"the {kind} plugin alias {alias!r} must be registered with a class or a "
                f"'module:Class' string, got {target!r}"
            )
        distribution, version = self._sources[plugin]
        return Provider(kind, alias, target, plugin, distribution, version)

    def _fail(self, failure: PluginFailure) -> None:
        self.failures.append(failure)
        warnings.warn(
            f"asyncz plugin {failure} (skipped; the plugin may be broken or not fully installed)",
            PluginWarning,
            stacklevel=4,
        )

    def _raise_conflicts(self) -> None:
        for (kind, alias), providers in sorted(self._conflicts.items()):
            names = [f"{p.source} (entry point {p.plugin!r})" for p in providers]
            raise DuplicateAliasError(kind, alias, names)

    # -- lookup ----------------------------------------------------------------------------

    def providers(self, kind: str | None = None) -> list[Provider]:
        """Every registered provider (of one kind), sorted by kind and alias."""
        if kind is not None:
            self._check_kind(kind)
        self.discover()
        return sorted(
            (p for p in self._providers.values() if kind is None or p.kind == kind),
            key=lambda p: (p.kind, p.alias),
        )

    def get(self, kind: str, alias: str) -> Provider:
        """The provider of ``alias``; :class:`UnknownAliasError` if there is none."""
        self._check_kind(kind)
        if not isinstance(alias, str):
            raise TypeError(f"a {kind} plugin alias must be a string, got {alias!r}")
        self.discover()
        try:
            return self._providers[(kind, alias)]
        except KeyError:
            raise UnknownAliasError(kind, alias, self._unknown_message(kind, alias)) from None

    def resolve(self, kind: str, alias: str) -> type:
        """The class registered under ``alias``, importing a lazy target on first use."""
        key = (kind, alias)
        loaded = self._loaded.get(key)
        if loaded is not None:  # resolved before, so discovered and unambiguous
            return loaded
        provider = self.get(kind, alias)
        target = provider.target
        if isinstance(target, str):
            try:
                target = ref_to_obj(target)
            except Exception as exc:
                missing = _missing_module(exc)
                if missing is not None:
                    raise PluginLoadError(
                        missing_dependency(
                            f"the {kind} plugin alias {alias!r} from {provider.source}", missing
                        )
                    ) from exc
                raise PluginLoadError(
                    f"the {kind} plugin alias {alias!r} from {provider.source} points at "
                    f"{provider.target!r}, which cannot be imported ({exc})"
                ) from exc
        self._loaded[key] = target
        return target  # type: ignore[no-any-return]

    def _check_kind(self, kind: str) -> None:
        if kind not in HOOKS:
            raise ValueError(f"unknown plugin kind {kind!r}; valid kinds are {', '.join(HOOKS)}")

    def _unknown_message(self, kind: str, alias: str) -> str:
        available = [p for p in self._providers.values() if p.kind == kind]
        lines = [f"No {kind} plugin is registered under the alias {alias!r}."]
        close = difflib.get_close_matches(alias, [p.alias for p in available], n=1, cutoff=0.6)
        if close:
            lines[0] += f" Did you mean {close[0]!r}?"
        if available:
            lines.append(f"Available {kind} aliases:")
            width = max(len(repr(p.alias)) for p in available)
            for p in sorted(available, key=lambda p: p.alias):
                lines.append(f"  {p.alias!r:<{width}}  {p.source}")
        else:
            lines.append(f"No {kind} plugins are installed.")
        if self.failures:
            lines.append("Plugins that failed to load (one of them may provide it):")
            lines.extend(f"  {failure}" for failure in self.failures)
        if self.blocked:
            lines.append(
                f"Plugins blocked by {DISABLE_ENV}: {', '.join(repr(b) for b in self.blocked)}"
            )
        if not close:
            lines.append("If the alias comes from a third-party plugin, it may not be installed.")
        return "\n".join(lines)


_default_registry: PluginRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> PluginRegistry:
    """The process-wide registry schedulers use unless they are given one."""
    global _default_registry
    with _default_lock:
        if _default_registry is None:
            _default_registry = PluginRegistry()
        return _default_registry


def _missing_module(exc: BaseException) -> ImportError | None:
    """The ImportError of a package that is not installed, behind ``exc`` (``ref_to_obj`` wraps
    it); ``None`` when asyncz itself is what failed to import (a bug, not a missing extra)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ImportError) and seen.name:
            return None if seen.name.split(".")[0] == "asyncz" else seen
        seen = seen.__cause__ or seen.__context__
    return None

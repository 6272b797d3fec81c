"""The plugin registry, with entry points injected (no installs) — see test_example_plugin.py
for the same behaviour through a really installed third-party distribution."""

from __future__ import annotations

import types
import warnings
from typing import Any

import pytest

import asyncz
from asyncz.core.plugins import PluginRegistry, PluginWarning, default_registry
from asyncz.exceptions import DuplicateAliasError, PluginLoadError, UnknownAliasError


class FakeDist:
    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version
        self.metadata = {"Name": name}


class FakeEntryPoint:
    def __init__(self, name: str, obj: Any, dist: str = "dist-a", version: str = "1.0") -> None:
        self.name = name
        self._obj = obj
        self.dist = FakeDist(dist, version)
        self.loads = 0

    def load(self) -> Any:
        self.loads += 1
        if isinstance(self._obj, BaseException):
            raise self._obj
        return self._obj


def trigger_plugin(*aliases: str, target: Any = object) -> types.SimpleNamespace:
    @asyncz.hookimpl
    def asyncz_register_triggers(register: Any) -> None:
        for alias in aliases:
            register(alias, target)

    return types.SimpleNamespace(asyncz_register_triggers=asyncz_register_triggers)


class Cron:
    pass


def registry(*entry_points: FakeEntryPoint, **kwargs: Any) -> PluginRegistry:
    return PluginRegistry(entry_points=lambda: entry_points, disabled=kwargs.get("disabled", ()))


def test_discovery_registers_each_alias_with_its_distribution() -> None:
    reg = registry(FakeEntryPoint("crons", trigger_plugin("cron", target=Cron), "dist-a", "2.1"))
    provider = reg.get("trigger", "cron")
    assert (provider.plugin, provider.distribution, provider.version) == ("crons", "dist-a", "2.1")
    assert reg.resolve("trigger", "cron") is Cron


def test_discovery_happens_once_and_lazily() -> None:
    calls = []

    def entry_points() -> list[FakeEntryPoint]:
        calls.append(1)
        return [FakeEntryPoint("crons", trigger_plugin("cron", target=Cron))]

    reg = PluginRegistry(entry_points=entry_points, disabled=())
    assert calls == []
    reg.get("trigger", "cron")
    reg.providers()
    reg.resolve("trigger", "cron")
    assert calls == [1]


def test_lazy_target_is_imported_on_first_resolve_only() -> None:
    reg = registry(FakeEntryPoint("lazy", trigger_plugin("iv", target="fractions:Fraction")))
    assert reg.get("trigger", "iv").target == "fractions:Fraction"
    from fractions import Fraction

    assert reg.resolve("trigger", "iv") is Fraction


def test_lazy_target_that_cannot_be_imported_names_plugin_and_cause() -> None:
    reg = registry(
        FakeEntryPoint(
            "heavy", trigger_plugin("db", target="no_such_mod_q:Store"), "asyncz-heavy", "0.3"
        )
    )
    with pytest.raises(PluginLoadError, match=r"'db' from asyncz-heavy 0.3.*no_such_mod_q"):
        reg.resolve("trigger", "db")


def test_a_missing_driver_is_an_import_error_naming_the_extra() -> None:
    # A plugin whose module needs a package asyncz has an extra for (here: the redis store's).
    reg = registry(
        FakeEntryPoint("cache", trigger_plugin("rd", target="redis.no_such_part_q:Store"))
    )
    with pytest.raises(ImportError) as caught:
        reg.resolve("trigger", "rd")
    assert isinstance(caught.value, PluginLoadError)
    message = str(caught.value)
    assert "'rd'" in message and "redis.no_such_part_q" in message
    assert 'pip install "asyncz[redis]"' in message
    other = registry(FakeEntryPoint("x", trigger_plugin("xx", target="no_such_pkg_q.mod:X")))
    with pytest.raises(PluginLoadError, match="pip install no_such_pkg_q"):
        other.resolve("trigger", "xx")


def test_unknown_alias_error_lists_suggestion_choices_sources_and_failures() -> None:
    reg = registry(
        FakeEntryPoint("crons", trigger_plugin("cron", target=Cron), "dist-a", "2.1"),
        FakeEntryPoint("dates", trigger_plugin("date", target=Cron), "dist-b", "0.9"),
        FakeEntryPoint("broken", ImportError("No module named 'missing_dep'"), "dist-c", "3.0"),
    )
    with pytest.warns(PluginWarning), pytest.raises(UnknownAliasError) as info:
        reg.get("trigger", "crn")
    error = info.value
    assert isinstance(error, LookupError)
    assert (error.kind, error.alias) == ("trigger", "crn")
    text = str(error)
    assert "'crn'" in text
    assert "Did you mean 'cron'?" in text
    assert "'cron'" in text and "dist-a 2.1" in text
    assert "'date'" in text and "dist-b 0.9" in text
    assert "'broken' from dist-c 3.0: ImportError: No module named 'missing_dep'" in text


def test_unknown_alias_with_nothing_close_says_plugin_may_not_be_installed() -> None:
    reg = registry(FakeEntryPoint("crons", trigger_plugin("cron", target=Cron)))
    with pytest.raises(UnknownAliasError, match="may not be installed") as info:
        reg.get("trigger", "zzzz")
    assert "Did you mean" not in str(info.value)
    with pytest.raises(UnknownAliasError, match="No store plugins are installed"):
        reg.get("store", "memory")


def test_broken_plugin_is_a_warning_not_a_crash() -> None:
    good = FakeEntryPoint("crons", trigger_plugin("cron", target=Cron))
    bad = FakeEntryPoint("broken", RuntimeError("boom at import"), "dist-x", "1")
    reg = registry(bad, good)
    with pytest.warns(PluginWarning, match=r"'broken' from dist-x 1: RuntimeError: boom"):
        reg.discover()
    assert reg.resolve("trigger", "cron") is Cron
    assert [f.plugin for f in reg.failures] == ["broken"]


def test_misspelled_hook_is_reported_as_a_failure() -> None:
    @asyncz.hookimpl
    def asyncz_register_trigger(register: Any) -> None:  # missing "s"
        register("x", Cron)

    plugin = types.SimpleNamespace(asyncz_register_trigger=asyncz_register_trigger)
    reg = registry(
        FakeEntryPoint("typo", plugin, "dist-typo", "1"),
        FakeEntryPoint("crons", trigger_plugin("cron", target=Cron)),
    )
    with pytest.warns(PluginWarning, match="typo"):
        reg.discover()
    assert reg.failures[0].plugin == "typo"
    assert "asyncz_register_trigger" in reg.failures[0].error
    assert reg.resolve("trigger", "cron") is Cron


def test_plugin_whose_hook_raises_registers_nothing() -> None:
    @asyncz.hookimpl
    def asyncz_register_triggers(register: Any) -> None:
        register("half", Cron)
        raise ValueError("second registration failed")

    plugin = types.SimpleNamespace(asyncz_register_triggers=asyncz_register_triggers)
    reg = registry(FakeEntryPoint("flaky", plugin))
    with pytest.warns(PluginWarning, match="second registration failed"):
        reg.discover()
    with pytest.raises(UnknownAliasError):
        reg.get("trigger", "half")


def test_bad_registrations_are_failures() -> None:
    reg = registry(FakeEntryPoint("bad", trigger_plugin("", target=Cron)))
    with pytest.warns(PluginWarning, match="non-empty string"):
        reg.discover()
    reg = registry(FakeEntryPoint("bad", trigger_plugin("x", target=42)))
    with pytest.warns(PluginWarning, match="class or a 'module:Class'"):
        reg.discover()


def test_duplicate_alias_names_both_distributions() -> None:
    reg = registry(
        FakeEntryPoint("one", trigger_plugin("cron", target=Cron), "dist-one", "1.0"),
        FakeEntryPoint("two", trigger_plugin("cron", target=Cron), "dist-two", "2.0"),
    )
    with pytest.raises(DuplicateAliasError) as info:
        reg.get("trigger", "cron")
    text = str(info.value)
    assert "dist-one 1.0" in text and "dist-two 2.0" in text and "'cron'" in text
    with pytest.raises(DuplicateAliasError):  # and on every later use
        reg.providers()


def test_same_alias_for_different_kinds_is_fine() -> None:
    @asyncz.hookimpl
    def asyncz_register_stores(register: Any) -> None:
        register("cron", Cron)

    store_plugin = types.SimpleNamespace(asyncz_register_stores=asyncz_register_stores)
    reg = registry(
        FakeEntryPoint("t", trigger_plugin("cron", target=Cron)), FakeEntryPoint("s", store_plugin)
    )
    assert {p.kind for p in reg.providers()} == {"trigger", "store"}


def test_disabled_plugins_are_blocked_by_entry_point_or_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = FakeEntryPoint("crons", trigger_plugin("cron", target=Cron), "dist-a")
    b = FakeEntryPoint("dates", trigger_plugin("date", target=Cron), "dist-b")
    monkeypatch.setenv("ASYNCZ_DISABLE_PLUGINS", " crons , dist-b")
    reg = PluginRegistry(entry_points=lambda: [a, b])
    with pytest.raises(
        UnknownAliasError,
        match=r"blocked by ASYNCZ_DISABLE_PLUGINS: 'crons', "
        r"'dates'",
    ):
        reg.get("trigger", "cron")
    assert a.loads == 0 and b.loads == 0  # blocked plugins are never even imported


def test_register_in_code_raises_instead_of_warning() -> None:
    reg = registry(FakeEntryPoint("crons", trigger_plugin("cron", target=Cron)))
    reg.register(trigger_plugin("local", target=Cron), "my-app")
    assert reg.get("trigger", "local").distribution == "(registered in code)"
    with pytest.raises(PluginLoadError):
        reg.register(trigger_plugin("", target=Cron), "bad-app")
    with pytest.raises(DuplicateAliasError):
        reg.register(trigger_plugin("cron", target=Cron), "copycat")


def test_unknown_kind_and_non_string_alias() -> None:
    reg = registry()
    with pytest.raises(ValueError, match="valid kinds are trigger, store, executor, serializer"):
        reg.get("widget", "x")
    with pytest.raises(TypeError):
        reg.get("trigger", 5)  # type: ignore[arg-type]


def test_builtins_are_found_through_our_own_entry_points() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        providers = {(p.kind, p.alias): p for p in default_registry().providers()}
    for key in [
        ("store", "memory"),
        ("executor", "asyncio"),
        ("trigger", "date"),
        ("trigger", "interval"),
    ]:
        assert key in providers
        assert providers[key].distribution == "asyncz"
        assert providers[key].version == asyncz.__version__

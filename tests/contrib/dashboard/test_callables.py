"""CallablePolicy: which "module:qualname" references a request may name, checked before import."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from subprocess import run as subprocess_run  # re-exported: must still be refused

import pytest

from asyncz.contrib.dashboard.callables import (
    CallableNotAllowed,
    CallableNotFound,
    CallablePolicy,
    as_policy,
    parse_reference,
)

HERE = __name__  # "tests.contrib.dashboard.test_callables"
NOT_CALLABLE = 42
_ = (os, subprocess_run)  # reachable as attributes of this module, which is the point


def sample_task(*args: object, **kwargs: object) -> None:
    """An application task."""


class Jobs:
    @staticmethod
    def nightly() -> None:
        """A task reached through a class."""


def test_application_code_is_allowed_by_default() -> None:
    policy = CallablePolicy()
    assert policy.allowed is None
    assert policy.resolve(f"{HERE}:sample_task") is sample_task
    assert policy.resolve(f"{HERE}:Jobs.nightly") is Jobs.nightly


@pytest.mark.parametrize(
    ("reference", "reason"),
    [
        ("os:system", "standard library"),
        ("subprocess:run", "standard library"),
        ("builtins:eval", "standard library"),
        ("pickle:loads", "standard library"),
        ("_pickle:loads", "standard library"),
        ("posix:system", "standard library"),
        ("importlib:import_module", "standard library"),
        ("asyncz.core.converters:ref_to_obj", "asyncz itself"),
        ("lilya.apps:Lilya", "site-packages"),
    ],
)
def test_the_default_refuses_what_is_not_application_code(reference: str, reason: str) -> None:
    with pytest.raises(CallableNotAllowed) as caught:
        CallablePolicy().resolve(reference)
    message = str(caught.value)
    assert repr(reference) in message
    assert reason in message
    assert "allowed_callables" in message  # says how to allow more
    assert caught.value.reference == reference
    assert not isinstance(caught.value, CallableNotFound)


@pytest.mark.parametrize("module", ["antigravity", "this"])
def test_a_refused_reference_is_never_imported(module: str) -> None:
    # Both modules do something visible on import; neither may be imported by a refusal.
    assert module not in sys.modules
    with pytest.raises(CallableNotAllowed):
        CallablePolicy().resolve(f"{module}:main")
    with pytest.raises(CallableNotAllowed):
        CallablePolicy([f"{HERE}:*"]).resolve(f"{module}:main")
    assert module not in sys.modules


def test_an_allow_list_refuses_unlisted_application_modules_without_importing_them() -> None:
    policy = CallablePolicy([f"{HERE}:sample_task"])
    name = "tests.contrib.dashboard.never_imported_module"
    with pytest.raises(CallableNotAllowed, match="matches no allowed pattern") as caught:
        policy.resolve(f"{name}:f")
    assert not isinstance(caught.value, CallableNotFound)
    assert name not in sys.modules


@pytest.mark.parametrize(
    "reference",
    [
        "",
        "os",
        "os:",
        ":system",
        "a:b:c",
        "a..b:c",
        "a.b:c()",
        "os:system; rm -rf /",
        "__import__('os'):system",
        "os :system",
        "tests:class",  # a keyword is no name
        "gASVJwAAAAAAAACMBXBvc2l4lIwGc3lzdGVtlJOUjAJpZJSFlFKULg==",  # a base64 pickle
        "x" * 600 + ":f",
    ],
)
def test_malformed_references_are_refused(reference: str) -> None:
    with pytest.raises(CallableNotAllowed):
        CallablePolicy().resolve(reference)
    with pytest.raises(CallableNotAllowed):
        parse_reference(reference)


@pytest.mark.parametrize("reference", [None, 1, b"os:system", ["os:system"], sample_task])
def test_non_strings_are_refused(reference: object) -> None:
    with pytest.raises(CallableNotAllowed, match="must be a string"):
        CallablePolicy().resolve(reference)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "qualname", ["_private", "Jobs._hidden", "__init__", "sample_task.__globals__", "__builtins__"]
)
def test_private_and_dunder_attributes_are_refused(qualname: str) -> None:
    with pytest.raises(CallableNotAllowed, match="private attribute"):
        CallablePolicy().resolve(f"{HERE}:{qualname}")
    with pytest.raises(CallableNotAllowed, match="private attribute"):
        CallablePolicy([f"{HERE}:*"]).resolve(f"{HERE}:{qualname}")


def test_a_module_reached_through_an_allowed_one_is_refused() -> None:
    with pytest.raises(CallableNotAllowed, match="reaches the module 'os'"):
        CallablePolicy().resolve(f"{HERE}:os.system")
    with pytest.raises(CallableNotAllowed, match="reaches the module 'os'"):
        CallablePolicy([f"{HERE}:*"]).resolve(f"{HERE}:os.system")


def test_a_function_imported_into_application_code_is_judged_where_it_is_defined() -> None:
    with pytest.raises(CallableNotAllowed, match="defined in 'subprocess'"):
        CallablePolicy().resolve(f"{HERE}:subprocess_run")
    with pytest.raises(CallableNotAllowed, match="defined in 'subprocess'"):
        CallablePolicy([f"{HERE}:*"]).resolve(f"{HERE}:subprocess_run")
    # Named exactly by the operator, it is trusted as written.
    assert CallablePolicy([f"{HERE}:subprocess_run"]).resolve(f"{HERE}:subprocess_run") is (
        subprocess_run
    )


def test_what_cannot_be_found_is_not_found() -> None:
    policy = CallablePolicy()
    for reference, text in [
        (f"{HERE}:missing", "'missing' not found"),
        ("tests.contrib.dashboard.no_such_module:f", "cannot be imported"),
        ("no_such_top_level_package_xyz:f", "no module"),
    ]:
        with pytest.raises(CallableNotFound, match=text) as caught:
            policy.resolve(reference)
        assert isinstance(caught.value, LookupError)
        assert isinstance(caught.value, ValueError)
    with pytest.raises(CallableNotFound, match="not a callable"):
        policy.resolve(f"{HERE}:NOT_CALLABLE")


def test_allow_list_patterns() -> None:
    exact = CallablePolicy([f"{HERE}:sample_task"])
    assert exact.resolve(f"{HERE}:sample_task") is sample_task
    with pytest.raises(CallableNotAllowed, match="matches no allowed pattern") as caught:
        exact.resolve(f"{HERE}:Jobs.nightly")
    assert f"{HERE}:sample_task" in str(caught.value)  # lists what is allowed

    module = CallablePolicy([f"{HERE}:*"])
    assert module.resolve(f"{HERE}:Jobs.nightly") is Jobs.nightly
    with pytest.raises(CallableNotAllowed):
        module.resolve("tests.contrib.dashboard.test_remote:noop")

    package = CallablePolicy(["tests.contrib.*"])
    assert package.resolve(f"{HERE}:sample_task") is sample_task
    with pytest.raises(CallableNotAllowed):
        package.resolve("tests.contribution:f")  # a prefix of the name is not the package

    installed = CallablePolicy(["lilya.*"])
    assert installed.resolve("lilya.apps:Lilya").__name__ == "Lilya"

    nothing = CallablePolicy([])
    with pytest.raises(CallableNotAllowed, match="empty"):
        nothing.resolve(f"{HERE}:sample_task")


@pytest.mark.parametrize(
    "pattern", ["os", "os:", ":f", "pkg.*.x", "pkg:_x", "pkg.:*", "*", "pkg:**", "a b.*"]
)
def test_malformed_patterns_fail_at_construction(pattern: str) -> None:
    with pytest.raises(ValueError, match="pattern"):
        CallablePolicy([pattern])


def test_allowed_must_be_a_list_of_strings() -> None:
    with pytest.raises(TypeError, match=r"write \['pkg.\*'\]"):
        CallablePolicy("pkg.*")
    with pytest.raises(TypeError):
        CallablePolicy([1])  # type: ignore[list-item]


def test_namespace_packages_and_installed_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "app_root" / "nsapp_remote_test"
    app.mkdir(parents=True)
    (app / "jobs.py").write_text("def job():\n    return 'ran'\n")
    installed = tmp_path / "venv" / "site-packages" / "fakeinstalled_remote_test"
    installed.mkdir(parents=True)
    (installed / "__init__.py").write_text("def job():\n    return 'ran'\n")
    monkeypatch.syspath_prepend(str(tmp_path / "app_root"))
    monkeypatch.syspath_prepend(str(tmp_path / "venv" / "site-packages"))
    try:
        assert CallablePolicy().resolve("nsapp_remote_test.jobs:job")() == "ran"
        with pytest.raises(CallableNotAllowed, match="site-packages"):
            CallablePolicy().resolve("fakeinstalled_remote_test:job")
        assert "fakeinstalled_remote_test" not in sys.modules
    finally:
        for name in list(sys.modules):
            if name.startswith(("nsapp_remote_test", "fakeinstalled_remote_test")):
                del sys.modules[name]


def test_as_policy_and_repr() -> None:
    policy = CallablePolicy([f"{HERE}:*"])
    assert as_policy(policy) is policy
    assert as_policy(None).allowed is None
    assert as_policy([f"{HERE}:*"]).allowed == (f"{HERE}:*",)
    assert repr(policy) == f"CallablePolicy(allowed=('{HERE}:*',))"

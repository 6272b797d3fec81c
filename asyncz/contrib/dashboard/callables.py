"""Which callables a request may name: the policy behind every ``"module:qualname"`` that arrives
from outside (the dashboard's task form, the remote control app).

Here: :class:`CallablePolicy` and its errors, :class:`CallableNotAllowed` (a reference the policy
refuses) and :class:`CallableNotFound` (an allowed reference that cannot be imported).

A reference is text, and text is never evaluated or unpickled: it is split into a module path and a
dotted attribute path, both checked against the policy *before* anything is imported. Without an
allow-list only application code passes: the top-level package must be found (by
:func:`importlib.util.find_spec`, which imports nothing for a top-level name) outside the standard
library and outside site-/dist-packages, and must not be asyncz itself. So ``myapp.tasks:report``
passes, while ``os:system``, ``subprocess:run``, ``builtins:eval`` or ``pickle:loads`` are refused
before any import. After the import, the object found must be callable, must not be reached through
another module (``myapp.tasks:os.system``), and must be defined in allowed code (a function that
``myapp.tasks`` merely imported from ``subprocess`` is refused).

With an allow-list, a reference must match one of its patterns:

* ``"pkg.mod:func"`` -- exactly that callable (trusted as written: the operator named it);
* ``"pkg.mod:*"`` -- any public callable of ``pkg.mod``;
* ``"pkg.*"`` -- any public callable of ``pkg`` or of a module below it.
"""

from __future__ import annotations

import importlib
import importlib.util
import keyword
import site
import sys
import sysconfig
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "CallableNotAllowed",
    "CallableNotFound",
    "CallablePolicy",
    "as_policy",
    "parse_reference",
]

#: Longest reference looked at; longer text is refused unread.
MAX_REFERENCE_LENGTH = 500
_REFERENCE_FORM = "'package.module:function' (or 'package.module:Class.method')"
_PATTERN_FORMS = (
    "'pkg.mod:func' (exactly), 'pkg.mod:*' (any in the module), 'pkg.*' (any below pkg)"
)
_INSTALLED_DIR_NAMES = frozenset({"site-packages", "dist-packages"})
_MISSING = "no module of that name can be found"


class CallableNotAllowed(ValueError):
    """A callable reference the policy refuses: malformed, outside application code, or matching
    no allowed pattern. The message names the reference and what would be allowed.

    :var reference: the reference as given (cut to a readable length)
    """

    def __init__(self, message: str, reference: object = None) -> None:
        super().__init__(message)
        self.reference = reference


class CallableNotFound(CallableNotAllowed, LookupError):
    """A reference the policy allows whose module or attribute cannot be imported."""


def _shown(reference: object) -> str:
    text = repr(reference)
    return text if len(text) <= 120 else f"{text[:80]}...{text[-30:]}"


def _is_name(segment: str) -> bool:
    return segment.isidentifier() and not keyword.iskeyword(segment)


def _split_dotted(text: str) -> list[str] | None:
    segments = text.split(".")
    return segments if all(_is_name(s) for s in segments) else None


def parse_reference(reference: object) -> tuple[str, tuple[str, ...]]:
    """``"pkg.mod:Class.func"`` as ``("pkg.mod", ("Class", "func"))``, or
    :class:`CallableNotAllowed` saying what is wrong with it. Imports nothing."""
    if not isinstance(reference, str):
        raise CallableNotAllowed(
            f"a callable reference must be a string such as {_REFERENCE_FORM}, "
            f"got {type(reference).__name__}",
            reference,
        )
    if len(reference) > MAX_REFERENCE_LENGTH:
        raise CallableNotAllowed(
            f"callable reference {_shown(reference)} is longer than {MAX_REFERENCE_LENGTH} "
            "characters",
            reference,
        )
    module, sep, qualname = reference.partition(":")
    module_parts = _split_dotted(module) if sep else None
    qual_parts = _split_dotted(qualname) if sep else None
    if module_parts is None or qual_parts is None:
        raise CallableNotAllowed(
            f"callable reference {_shown(reference)} is not of the form {_REFERENCE_FORM}: "
            "dotted Python identifiers around one colon",
            reference,
        )
    private = [segment for segment in qual_parts if segment.startswith("_")]
    if private:
        raise CallableNotAllowed(
            f"callable reference {_shown(reference)} names the private attribute "
            f"{private[0]!r}; only public names (not starting with '_') may be referenced",
            reference,
        )
    return module, tuple(qual_parts)


def _paths_of(names: Iterable[str]) -> tuple[Path, ...]:
    found: list[Path] = []
    for name in names:
        try:
            found.append(Path(name).resolve())
        except (OSError, RuntimeError):  # pragma: no cover - an unreadable path entry
            continue
    return tuple(found)


def _stdlib_dirs() -> tuple[Path, ...]:
    # The base interpreter's folders: in a virtual environment sysconfig's own "platstdlib" is
    # the environment's lib/pythonX.Y, which holds its site-packages.
    bases = {
        "base": sys.base_prefix,
        "installed_base": sys.base_prefix,
        "platbase": sys.base_exec_prefix,
        "installed_platbase": sys.base_exec_prefix,
    }
    paths = sysconfig.get_paths(vars=bases)
    return _paths_of(p for key in ("stdlib", "platstdlib") if (p := paths.get(key)))


def _installed_dirs() -> tuple[Path, ...]:
    paths = sysconfig.get_paths()
    names = [p for key in ("purelib", "platlib") if (p := paths.get(key))]
    try:
        names.extend(site.getsitepackages())
    except AttributeError:  # pragma: no cover - an old virtualenv's site module
        pass
    user_site = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    if isinstance(user_site, str):
        names.append(user_site)
    return _paths_of(names)


def _within(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _not_application_code(top: str) -> str | None:
    """Why the top-level module ``top`` is not application code, or None when it is.

    Looks the module up without importing it (``find_spec`` on a top-level name runs no module
    code; a module imported already gives the spec it was imported by)."""
    if top == "asyncz":
        return "it is asyncz itself"
    if top in sys.builtin_module_names or top in getattr(sys, "stdlib_module_names", ()):
        return "it is part of the Python standard library"
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError) as exc:
        return f"it cannot be looked up ({exc})"
    if spec is None:
        return _MISSING
    if spec.origin in ("built-in", "frozen"):
        return "it is built into the interpreter"
    if spec.has_location and spec.origin:
        locations = [spec.origin]
    else:  # a namespace package: every folder it spans
        locations = list(spec.submodule_search_locations or ())
    if not locations:
        return "it has no location on disk"
    stdlib, installed = _stdlib_dirs(), _installed_dirs()
    for location in _paths_of(locations):
        if _INSTALLED_DIR_NAMES.intersection(location.parts) or _within(location, installed):
            return "it is an installed distribution (in site-packages)"
        if _within(location, stdlib):
            return "it is part of the Python standard library"
    return None


class _Pattern:
    """One allow-list entry, parsed."""

    __slots__ = ("exact", "module", "qualname", "text")

    def __init__(self, text: object) -> None:
        if not isinstance(text, str):
            raise TypeError(f"an allowed callable pattern must be a string, got {text!r}")
        self.text = text
        self.qualname: tuple[str, ...] | None = None
        self.exact = False
        if ":" in text:
            module, _, qualname = text.partition(":")
            if qualname == "*":
                if _split_dotted(module) is None:
                    raise ValueError(
                        f"allowed callable pattern {text!r} is not one of {_PATTERN_FORMS}"
                    )
                self.module = module
                return
            try:
                self.module, self.qualname = parse_reference(text)
            except CallableNotAllowed:
                raise ValueError(
                    f"allowed callable pattern {text!r} is not one of {_PATTERN_FORMS}"
                ) from None
            self.exact = True
            return
        if not text.endswith(".*") or _split_dotted(text[:-2]) is None:
            raise ValueError(f"allowed callable pattern {text!r} is not one of {_PATTERN_FORMS}")
        self.module = text[:-2]

    @property
    def is_package(self) -> bool:
        return not self.exact and not self.text.endswith(":*")

    def matches(self, module: str, qualname: tuple[str, ...]) -> bool:
        if self.exact:
            return module == self.module and qualname == self.qualname
        return self.covers_module(module)

    def covers_module(self, module: str) -> bool:
        if self.is_package:
            return module == self.module or module.startswith(self.module + ".")
        return module == self.module


class CallablePolicy:
    """Decides which ``"module:qualname"`` references may be imported and run as tasks.

    :param allowed: allow-list patterns (see the module docstring); ``None`` (the default)
        allows application code only, an empty list allows nothing
    """

    def __init__(self, allowed: Iterable[str] | None = None) -> None:
        if isinstance(allowed, str):
            raise TypeError(
                f"allowed callables must be a list of patterns, got the string {allowed!r}; "
                f"write [{allowed!r}]"
            )
        self._patterns: tuple[_Pattern, ...] | None = (
            None if allowed is None else tuple(_Pattern(text) for text in allowed)
        )

    @property
    def allowed(self) -> tuple[str, ...] | None:
        """The allow-list patterns, or ``None`` for "application code only"."""
        return None if self._patterns is None else tuple(p.text for p in self._patterns)

    def __repr__(self) -> str:
        return f"CallablePolicy(allowed={self.allowed!r})"

    def _what_is_allowed(self) -> str:
        if self._patterns is None:
            return (
                "by default only application code is allowed (a package outside the standard "
                "library and site-packages, other than asyncz); to allow more, configure "
                "allowed_callables with patterns such as 'myapp.tasks:*'"
            )
        if not self._patterns:
            return "the allow-list is empty: no callable is allowed"
        listed = ", ".join(repr(p.text) for p in self._patterns)
        return f"allowed patterns: {listed}"

    def check(self, reference: object) -> tuple[str, tuple[str, ...]]:
        """Refuse ``reference`` (:class:`CallableNotAllowed`) unless the policy allows it, without
        importing it; returns its module and attribute path."""
        module, qualname = parse_reference(reference)
        if self._patterns is None:
            problem = _not_application_code(module.partition(".")[0])
            if problem is _MISSING:
                raise CallableNotFound(
                    f"callable reference {_shown(reference)}: no module {module!r} can be found",
                    reference,
                )
            if problem is not None:
                raise CallableNotAllowed(
                    f"callable reference {_shown(reference)} is not allowed: module "
                    f"{module!r} is not application code ({problem}); {self._what_is_allowed()}",
                    reference,
                )
        elif not any(p.matches(module, qualname) for p in self._patterns):
            raise CallableNotAllowed(
                f"callable reference {_shown(reference)} is not allowed: it matches no allowed "
                f"pattern; {self._what_is_allowed()}",
                reference,
            )
        return module, qualname

    def resolve(self, reference: str) -> Callable[..., Any]:
        """The callable ``reference`` names, imported only once the policy allows it.

        :raises CallableNotAllowed: refused by the policy (nothing was imported)
        :raises CallableNotFound: allowed, but the module or the attribute does not exist, or
            the object is not a callable of allowed code
        """
        module_name, qualname = self.check(reference)
        exact = self._patterns is not None and any(
            p.exact and p.matches(module_name, qualname) for p in self._patterns
        )
        shown = _shown(reference)
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise CallableNotFound(
                f"callable reference {shown}: module {module_name!r} cannot be imported: {exc}",
                reference,
            ) from None
        for position, name in enumerate(qualname):
            try:
                target = getattr(target, name)
            except AttributeError:
                raise CallableNotFound(
                    f"callable reference {shown}: {name!r} not found in "
                    f"{'.'.join((module_name, *qualname[:position]))!r}",
                    reference,
                ) from None
            if isinstance(target, types.ModuleType):
                raise CallableNotAllowed(
                    f"callable reference {shown} reaches the module {target.__name__!r} "
                    f"through {module_name!r}; reference a callable as defined in its own "
                    f"module; {self._what_is_allowed()}",
                    reference,
                )
        if not callable(target):
            raise CallableNotFound(
                f"callable reference {shown} names a {type(target).__name__}, not a callable",
                reference,
            )
        if not exact:
            self._check_defined_in_allowed_code(target, reference)
        return target  # type: ignore[no-any-return]

    def _check_defined_in_allowed_code(self, target: Any, reference: str) -> None:
        """A public name of an allowed module may still be something it imported (``from
        subprocess import run``): the module the object is defined in must be allowed too (by a
        wildcard pattern, or as application code)."""
        defined_in = getattr(target, "__module__", None)
        if not isinstance(defined_in, str) or _split_dotted(defined_in) is None:
            problem: str | None = "where it is defined cannot be told (no __module__)"
        elif self._patterns is not None and any(
            p.covers_module(defined_in) for p in self._patterns if not p.exact
        ):
            problem = None
        else:
            reason = _not_application_code(defined_in.partition(".")[0])
            problem = None if reason is None else f"it is defined in {defined_in!r} ({reason})"
        if problem is not None:
            raise CallableNotAllowed(
                f"callable reference {_shown(reference)} is not allowed: {problem}; "
                f"{self._what_is_allowed()}",
                reference,
            )


def as_policy(allowed: CallablePolicy | Iterable[str] | None) -> CallablePolicy:
    """``allowed`` as a policy: a :class:`CallablePolicy` as it is, patterns or None wrapped."""
    return allowed if isinstance(allowed, CallablePolicy) else CallablePolicy(allowed)

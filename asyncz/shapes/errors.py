"""The errors of the Shape layer (Asyncz's names), all under :class:`ShapeError`.

Each one also derives from the built-in exception a Python caller would expect for it, so code
catching ``LookupError``/``ValueError``/``TypeError``/``ImportError`` keeps working::

    AsynczException
    └── ShapeError
        ├── ShapeNotFoundError (LookupError)       no Shape registered under that name
        ├── ShapeRegistrationError (ValueError)    a bad or duplicate registration
        ├── ShapeCapabilityError                   the Shape cannot do that (fields, schema)
        ├── ShapeValidationError (ValueError)      a value does not fit the model
        ├── ShapeSerializationError (ValueError)   a value cannot be dumped
        ├── ShapeDeserializationError (ValueError) a stored value cannot be loaded
        ├── ShapeCompatibilityError                two representations do not agree
        ├── ShapeDependencyError (ImportError)     the Shape's optional library is missing
        ├── ShapeMigrationError                    a stored representation of another version
        └── ShapeTypeError (TypeError)             a Shape spec that is not a name/class/instance
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from asyncz.core.errors import AsynczException

__all__ = [
    "ShapeCapabilityError",
    "ShapeCompatibilityError",
    "ShapeDependencyError",
    "ShapeDeserializationError",
    "ShapeError",
    "ShapeMigrationError",
    "ShapeNotFoundError",
    "ShapeRegistrationError",
    "ShapeSerializationError",
    "ShapeTypeError",
    "ShapeValidationError",
]


class ShapeError(AsynczException):
    """Base class of every error raised at a Shape (representation) boundary."""


class ShapeNotFoundError(ShapeError, LookupError):
    """No Shape is registered under the name asked for.

    :ivar name: the name asked for
    """

    def __init__(self, name: object, available: Iterable[str] | None = None) -> None:
        self.name = name
        message = f"No asyncz Shape is registered under the name {name!r}"
        if available is not None:
            names = sorted(available)
            close = (
                difflib.get_close_matches(name, names, n=1, cutoff=0.6)
                if isinstance(name, str)
                else []
            )
            if close:
                message += f" (did you mean {close[0]!r}?)"
            message += f"; registered Shapes: {', '.join(map(repr, names)) or 'none'}"
        super().__init__(message + ".")

    def __str__(self) -> str:  # LookupError subclasses like KeyError would repr() it
        return str(self.args[0])


class ShapeRegistrationError(ShapeError, ValueError):
    """A Shape registration was refused (bad name, not a Shape class, name already taken)."""


class ShapeCapabilityError(ShapeError):
    """The Shape does not offer the operation asked for (field inspection, schemas)."""


class ShapeValidationError(ShapeError, ValueError):
    """A value could not be validated or constructed as the model asked for."""


class ShapeSerializationError(ShapeError, ValueError):
    """A value could not be dumped to plain data."""


class ShapeDeserializationError(ShapeError, ValueError):
    """Stored plain data could not be loaded back into the model."""


class ShapeCompatibilityError(ShapeError):
    """Two representations (a record's and the running Shape's) are not compatible."""


class ShapeDependencyError(ShapeError, ImportError):
    """The optional library a Shape needs is not installed.

    :ivar shape_name: the Shape's name
    :ivar dependency: the missing distribution
    :ivar extra: the asyncz extra that installs it
    """

    def __init__(self, shape_name: str, dependency: str, extra: str) -> None:
        self.shape_name = shape_name
        self.dependency = dependency
        self.extra = extra
        super().__init__(
            f"The {shape_name!r} asyncz Shape needs the optional {dependency!r} package, which "
            f"is not installed: pip install 'asyncz[{extra}]'"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class ShapeMigrationError(ShapeError):
    """A stored representation has a version or kind this asyncz does not read."""


class ShapeTypeError(ShapeError, TypeError):
    """A Shape was given as something other than a name, a Shape class or a Shape instance."""

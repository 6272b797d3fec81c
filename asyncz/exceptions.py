"""Public home of the exceptions (``from asyncz.exceptions import TaskLookupError``)."""

from asyncz.core.errors import *  # noqa: F403
from asyncz.core.errors import __all__ as __all__

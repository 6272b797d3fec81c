"""Public home of event codes and classes (``from asyncz.events import TASK_EXECUTED``)."""

from asyncz.core.events import *  # noqa: F403
from asyncz.core.events import __all__ as __all__

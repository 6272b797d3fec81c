"""What happens when a store's driver is not installed (simulated here by hiding them)."""

import sys

sys.modules["sqlalchemy"] = None  # as if `pip install 'asyncz[sqlalchemy]'` had not been run
sys.modules["redis"] = None

from asyncz.schedulers import AsyncIOScheduler  # noqa: E402

# The class from its public module: an ImportError naming the extra.
try:
    from asyncz.stores import SQLAlchemyStore  # noqa: F401
except ImportError as exc:
    print(type(exc).__name__, "-", str(exc).split(" (")[0])

# The store by its alias, in a configuration: a PluginLoadError, which is also an
# ImportError, naming the package and the extra, when the scheduler is configured.
try:
    AsyncIOScheduler(stores={"default": {"type": "sqlalchemy", "database": "sqlite://"}})
except ImportError as exc:
    print(type(exc).__name__, "-", str(exc).split("; ")[-1])

# The Redis store imports its driver when it is made: the same message.
try:
    AsyncIOScheduler(stores={"default": {"type": "redis"}})
except ImportError as exc:
    print(type(exc).__name__, "-", str(exc).split("; ")[-1])

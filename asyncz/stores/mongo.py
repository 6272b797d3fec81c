"""Asyncz's path ``asyncz.stores.mongo``: not provided by asyncz.

Importing it raises :class:`ModuleNotFoundError` (an ImportError) at once, so code written for
Asyncz's MongoDB store fails where it imports it rather than later (and ``importorskip`` skips).
A store is shipped only once it runs in CI against a real server, and no MongoDB server is
available to this project's CI.
"""

raise ModuleNotFoundError(
    "asyncz has no MongoDB store (MongoDBStore): it is shipped only once it runs against a real "
    "MongoDB server in CI. The stores that exist are 'memory' (MemoryStore), 'file' (FileStore), "
    "'sqlalchemy' (SQLAlchemyStore: SQLite, PostgreSQL, MariaDB/MySQL) and 'redis' (RedisStore); "
    "`asyncz plugins` lists them with any third-party ones"
)

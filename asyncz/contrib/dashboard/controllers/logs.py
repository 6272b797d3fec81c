"""Asyncz's import path for the log storage accessor (``controllers.logs.get_log_storage``).

The log pages themselves are in :mod:`asyncz.contrib.dashboard.controllers.review`; the storage
in :mod:`asyncz.contrib.dashboard.logs.storage`.
"""

from asyncz.contrib.dashboard.logs.storage import get_log_storage

__all__ = ["get_log_storage"]

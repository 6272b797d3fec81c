"""Asyncz's import path for the process-pool executor."""

from asyncz.plugins.executors.processpool import ProcessPoolExecutor, WorkerProcessDied

__all__ = ["ProcessPoolExecutor", "WorkerProcessDied"]

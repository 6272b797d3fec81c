"""Asyncz's import path for the pool executors."""

from asyncz.core.execution import run_task
from asyncz.plugins.executors._pool import BasePoolExecutor
from asyncz.plugins.executors.processpool import ProcessPoolExecutor
from asyncz.plugins.executors.threadpool import ThreadPoolExecutor

__all__ = ["BasePoolExecutor", "ProcessPoolExecutor", "ThreadPoolExecutor", "run_task"]

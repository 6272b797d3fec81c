"""Asyncz's import path for the debug executor."""

from asyncz.plugins.executors.debug import DebugExecutor

__all__ = ["DebugExecutor"]

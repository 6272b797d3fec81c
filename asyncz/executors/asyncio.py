"""Asyncz's import path for the asyncio executor."""

from asyncz.plugins.executors.asyncio import AsyncIOExecutor

__all__ = ["AsyncIOExecutor"]

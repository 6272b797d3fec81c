"""ASGI middleware of the dashboard that sits in front of its pages (Asyncz's import path)."""

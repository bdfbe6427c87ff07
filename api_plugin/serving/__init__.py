"""Running the app: mounting it into a host, Paste factories, gunicorn workers and
``api-plugin serve``, and the Airflow plugin that hosts it inside Airflow 3's api-server.

The public names (the mount helpers) are imported on first use (PEP 562): gunicorn
imports the worker modules here by dotted name, and they need none of the app.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api_plugin.serving.mount import (
        build_api,
        build_application,
        mount,
        mount_entry_points,
        mount_into,
    )

_NAMES = ("build_api", "build_application", "mount", "mount_entry_points", "mount_into")


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(import_module("api_plugin.serving.mount"), name)
    raise AttributeError(f"module 'api_plugin.serving' has no attribute {name!r}")


__all__ = ["build_api", "build_application", "mount", "mount_entry_points", "mount_into"]

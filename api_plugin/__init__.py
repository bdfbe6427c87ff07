"""Apache Airflow's experimental REST API as a framework-agnostic WSGI plugin.

The public surface: ``create_app`` (the whole application for a configuration),
``Config``, and the helpers a host mounts the API with (``mount``, ``mount_into``,
``build_api``, ``mount_entry_points``). They are imported on first use (PEP 562), so
``import api_plugin`` stays cheap and no layer's import pulls in the layers above it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from api_plugin.serving.mount import build_api, mount, mount_entry_points, mount_into
    from api_plugin.settings.config import Config

#: Public names and the module each comes from.
_LAZY = {
    "Config": "api_plugin.settings.config",
    "build_api": "api_plugin.serving.mount",
    "mount": "api_plugin.serving.mount",
    "mount_entry_points": "api_plugin.serving.mount",
    "mount_into": "api_plugin.serving.mount",
}


def create_app(config: Config | None = None, **overrides: Any) -> Any:
    """Build the WSGI application, wrapped in the configured auth stack.

    ``config`` defaults to the configuration read from the INI file and the
    environment; ``overrides`` are ``section__key`` settings applied on top.
    """
    from api_plugin.serving.mount import build_application

    return build_application(config, **overrides)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'api_plugin' has no attribute {name!r}")


__all__ = ["Config", "__version__", "build_api", "create_app", "mount", "mount_entry_points",
           "mount_into"]

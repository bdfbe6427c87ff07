"""Apache Airflow's experimental REST API as a framework-agnostic WSGI plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from api_plugin.settings.config import Config


def create_app(config: Config | None = None, **overrides: Any) -> Any:
    """Build the WSGI application, wrapped in the configured auth stack.

    ``config`` defaults to the configuration read from the INI file and the
    environment; ``overrides`` are ``section__key`` settings applied on top.
    """
    from api_plugin.serving.mount import build_application

    return build_application(config, **overrides)


__all__ = ["__version__", "create_app"]

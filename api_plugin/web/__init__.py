"""The HTTP layer: the URL map, the views, JSON rendering and request checks.

Nothing here touches the database; views call the services and the app renders what
they return, or the error they raise. The public names are imported on first use
(PEP 562): the services import ``web.rendering``, and must not pull in the app above them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api_plugin.web.app import ApiApp
    from api_plugin.web.routes import build_url_map

_LAZY = {"ApiApp": "api_plugin.web.app", "build_url_map": "api_plugin.web.routes"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'api_plugin.web' has no attribute {name!r}")


__all__ = ["ApiApp", "build_url_map"]

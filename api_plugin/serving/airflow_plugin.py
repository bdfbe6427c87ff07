"""The Airflow 3 plugin: the experimental API inside Airflow's own api-server.

Registered under the ``airflow.plugins`` entry-point group, so ``pip install api_plugin``
into an Airflow 3 environment is enough: ``airflow api-server`` imports this module and
mounts ``fastapi_apps`` (the WSGI app served to its ASGI server by ``asgi_bridge``, one
thread hop a request) at the configured prefix, ``/api/experimental`` by default.

Only Airflow imports this module; the rest of api_plugin never imports Airflow. Settings
are Airflow's own (``api_plugin.settings.airflow``): its database, ``[api_auth]`` for the
``airflow_jwt`` backend (the default here), and the ``[api_plugin]`` section. Airflow does
not authenticate plugin apps, so a configuration that would serve the API open is refused
at import: the plugin then shows up among Airflow's plugin import errors
(``airflow plugins``, ``GET /api/v2/plugins/importErrors``) and nothing is mounted.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin

from api_plugin.auth.base import WSGIApp
from api_plugin.serving.asgi_bridge import WsgiOnAsgi
from api_plugin.serving.per_process import PerProcessApp
from api_plugin.settings.airflow import AirflowConf, hosted_config
from api_plugin.settings.config import DEFAULT_PREFIX

CONFIG = hosted_config(AirflowConf(conf))


def build_hosted_api() -> WSGIApp:
    """The API behind its auth stack, on Airflow's database (one engine per process)."""
    from api_plugin.serving.mount import build_api

    return build_api(hosted_config(AirflowConf(conf)))


_hosted_app = PerProcessApp(build_hosted_api)


class ExperimentalApiPlugin(AirflowPlugin):  # type: ignore[misc]
    """Mounts the experimental API in Airflow 3's api-server."""

    name = "api_plugin"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [{
        "app": WsgiOnAsgi(_hosted_app),
        "url_prefix": CONFIG.prefix or DEFAULT_PREFIX,
        "name": "Airflow experimental API (api_plugin)",
    }]

"""The API client: one client, two transports, chosen by ``[cli] api_client``.

``ApiClient`` writes every operation once. ``json_client`` carries its requests over HTTP
to a server (this plugin, or Airflow's own webserver); ``local_client`` hands them to the
API's WSGI app in this process, on the configured database. Both return the same
JSON-ready values and raise the same ``api_plugin.errors.ApiError`` exceptions, because
the same code reads every answer.
"""

from __future__ import annotations

from api_plugin.client.base import ApiClient, ClientConnectionError
from api_plugin.client.transport import Answer, Transport
from api_plugin.settings.config import Config

CLIENT_ALIASES = {
    "json_client": "json_client",
    "airflow.api.client.json_client": "json_client",
    "local_client": "local_client",
    "airflow.api.client.local_client": "local_client",
}


def get_client(config: Config, name: str | None = None) -> ApiClient:
    """The client named by ``name`` or ``[cli] api_client``, configured from ``config``."""
    chosen = (name or config.api_client).strip()
    try:
        kind = CLIENT_ALIASES[chosen]
    except KeyError:
        raise ValueError(
            f"unknown api_client {chosen!r}: use json_client or local_client "
            "(or airflow.api.client.json_client / local_client)"
        ) from None
    if kind == "local_client":
        from api_plugin.client.local_client import LocalClient

        return LocalClient.from_config(config)
    from api_plugin.client.json_client import JsonClient

    return JsonClient.from_config(config)


__all__ = ["Answer", "ApiClient", "ClientConnectionError", "Transport", "get_client"]

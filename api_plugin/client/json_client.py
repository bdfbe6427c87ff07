"""json_client: the client over HTTP, against this plugin or Airflow's own webservers.

Unlike Airflow 2.10's json_client it sends ``replace_microseconds`` as the string both
reference servers understand, and it keeps any path prefix of ``endpoint_url``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
import requests.auth

from api_plugin.client.base import ApiClient, ClientConnectionError
from api_plugin.client.transport import Answer
from api_plugin.settings.config import DEFAULT_CONFIG, DEFAULT_PREFIX, Config


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <token>``, e.g. a token from Airflow 3's ``/auth/token``."""

    def __init__(self, token: str) -> None:
        token = token.strip()
        if not token or any(c in token for c in "\r\n\0 "):
            raise ValueError("the API token is empty or holds spaces or line breaks")
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class HttpTransport:
    """Requests sent with a ``requests`` session to ``endpoint_url`` + ``prefix``."""

    def __init__(self, endpoint_url: str, *, prefix: str = DEFAULT_PREFIX,
                 auth: Any = None, timeout: float = DEFAULT_CONFIG.client_timeout) -> None:
        self.base = endpoint_url.rstrip("/") + "/" + prefix.strip("/")
        self.session = requests.Session()
        self.session.auth = auth
        self.timeout = timeout

    def request(self, method: str, path: str, *, json: Any = None,
                params: Mapping[str, Any] | None = None) -> Answer:
        url = self.base + path
        try:
            response = self.session.request(method, url, json=json, params=params,
                                            timeout=self.timeout)
        except requests.RequestException as exc:
            raise ClientConnectionError(f"cannot reach {url}: {exc}") from None
        return Answer(response.status_code, response.reason or "",
                      list(response.headers.items()), response.content, url)

    def close(self) -> None:
        self.session.close()


class JsonClient(ApiClient):
    """The client over HTTP; ``auth`` is anything requests accepts (Basic tuple,
    Kerberos), or ``token`` a bearer token (Airflow 3's api-server tokens, for
    ``airflow_jwt``)."""

    transport: HttpTransport

    def __init__(self, endpoint_url: str, *, prefix: str = DEFAULT_PREFIX,
                 auth: Any = None, timeout: float = DEFAULT_CONFIG.client_timeout,
                 token: str | None = None) -> None:
        if token is not None and auth is not None:
            raise ValueError("give either auth or token, not both")
        super().__init__(HttpTransport(
            endpoint_url, prefix=prefix, timeout=timeout,
            auth=BearerAuth(token) if token is not None else auth))

    @property
    def base(self) -> str:
        """The API's URL: ``endpoint_url`` and the prefix."""
        return self.transport.base

    @classmethod
    def from_config(cls, config: Config) -> JsonClient:
        """Endpoint, prefix and credentials from ``[cli]``: ``api_token`` (a bearer token;
        wins over the rest), or ``auth = basic|kerberos``."""
        auth: Any = None
        kind = (config.get("cli", "auth") or "").strip().lower()
        username = config.get("cli", "username")
        token = config.get("cli", "api_token") or None
        if token is None and kind == "kerberos":
            from requests_kerberos import REQUIRED, HTTPKerberosAuth

            auth = HTTPKerberosAuth(
                mutual_authentication=REQUIRED,
                service=config.client_kerberos_service,
                hostname_override=config.get("cli", "kerberos_hostname"),
            )
        elif token is None and (username is not None or kind == "basic"):
            auth = (username or "", config.get("cli", "password") or "")
        return cls(
            config.endpoint_url,
            prefix=config.prefix,
            auth=auth,
            timeout=config.client_timeout,
            token=token,
        )

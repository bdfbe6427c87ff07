"""json_client: the API over HTTP, against this plugin or Airflow's own webservers.

Unlike Airflow 2.10's json_client it sends ``replace_microseconds`` as the string both
reference servers understand, and it keeps any path prefix of ``endpoint_url``. Error
answers become the same ``ApiError`` exceptions local_client raises.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests
import requests.auth

from api_plugin.client.base import ApiClient, ClientConnectionError
from api_plugin.errors import ApiError, error_for_status
from api_plugin.settings.config import DEFAULT_CONFIG, DEFAULT_PREFIX, Config


def _segment(value: str) -> str:
    return quote(value, safe="")


def _date(value: datetime | str) -> str:
    return value.isoformat() if isinstance(value, datetime) else value


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


class JsonClient(ApiClient):
    """HTTP transport; ``auth`` is anything requests accepts (Basic tuple, Kerberos), or
    ``token`` a bearer token (Airflow 3's api-server tokens, for ``airflow_jwt``)."""

    def __init__(self, endpoint_url: str, *, prefix: str = DEFAULT_PREFIX,
                 auth: Any = None, timeout: float = DEFAULT_CONFIG.client_timeout,
                 token: str | None = None) -> None:
        if token is not None and auth is not None:
            raise ValueError("give either auth or token, not both")
        self.base = endpoint_url.rstrip("/") + "/" + prefix.strip("/")
        self.session = requests.Session()
        self.session.auth = BearerAuth(token) if token is not None else auth
        self.timeout = timeout

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

    def _request(self, method: str, path: str, json: Any = None,
                 params: dict[str, Any] | None = None) -> Any:
        url = self.base + path
        try:
            response = self.session.request(method, url, json=json, params=params,
                                            timeout=self.timeout)
        except requests.RequestException as exc:
            raise ClientConnectionError(f"cannot reach {url}: {exc}") from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400:
            message = payload.get("error") if isinstance(payload, dict) else None
            if not isinstance(message, str):
                first = (response.text or response.reason or "").strip().splitlines()
                message = f"HTTP {response.status_code}: {first[0][:200] if first else ''}"
            if response.status_code == 503:
                raise ClientConnectionError(message)
            raise error_for_status(response.status_code, message)
        if payload is None:
            raise ApiError(f"non-JSON answer from {url}", response.status_code)
        return payload

    def test(self) -> dict[str, Any]:
        return dict(self._request("GET", "/test"))

    def trigger_dag(self, dag_id: str, run_id: str | None = None, conf: Any = None,
                    execution_date: datetime | str | None = None,
                    replace_microseconds: bool | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if run_id is not None:
            body["run_id"] = run_id
        if conf is not None:
            body["conf"] = conf
        if execution_date is not None:
            body["execution_date"] = _date(execution_date)
        if replace_microseconds is not None:
            body["replace_microseconds"] = "true" if replace_microseconds else "false"
        return dict(self._request("POST", f"/dags/{_segment(dag_id)}/dag_runs", json=body))

    def get_dag_runs(self, dag_id: str, state: str | None = None, limit: int | None = None,
                     offset: int | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("state", state), ("limit", limit), ("offset", offset))
                  if v is not None}
        return list(self._request("GET", f"/dags/{_segment(dag_id)}/dag_runs", params=params))

    def get_dag_run_state(self, dag_id: str, execution_date: datetime | str) -> dict[str, Any]:
        path = f"/dags/{_segment(dag_id)}/dag_runs/{_segment(_date(execution_date))}"
        return dict(self._request("GET", path))

    def get_task(self, dag_id: str, task_id: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/dags/{_segment(dag_id)}/tasks/{_segment(task_id)}"))

    def get_task_instance(self, dag_id: str, execution_date: datetime | str,
                          task_id: str) -> dict[str, Any]:
        path = (f"/dags/{_segment(dag_id)}/dag_runs/{_segment(_date(execution_date))}"
                f"/tasks/{_segment(task_id)}")
        return dict(self._request("GET", path))

    def set_paused(self, dag_id: str, paused: bool) -> dict[str, Any]:
        flag = "true" if paused else "false"
        return dict(self._request("GET", f"/dags/{_segment(dag_id)}/paused/{flag}"))

    def get_paused(self, dag_id: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/dags/{_segment(dag_id)}/paused"))

    def latest_runs(self) -> dict[str, Any]:
        return dict(self._request("GET", "/latest_runs"))

    def get_pools(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/pools"))

    def get_pool(self, name: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/pools/{_segment(name)}"))

    def create_pool(self, name: str, slots: int, description: str) -> dict[str, Any]:
        body = {"name": name, "slots": slots, "description": description}
        return dict(self._request("POST", "/pools", json=body))

    def delete_pool(self, name: str) -> dict[str, Any]:
        return dict(self._request("DELETE", f"/pools/{_segment(name)}"))

    def close(self) -> None:
        self.session.close()

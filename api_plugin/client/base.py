"""The client: every operation of the API written once, over any transport.

Each method is the request its endpoint takes; the answer is read in one place
(``_read``): the JSON value, or the error the answer stands for, rebuilt as the same
``api_plugin.errors`` exception the server raised. A 503 (the database or the server
cannot answer now) is a ``ClientConnectionError``, like a server that cannot be reached.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from api_plugin.client.transport import Answer, Transport
from api_plugin.errors import ApiError, error_for_status

#: The headers an error carries back to its caller.
_ERROR_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


class ClientConnectionError(Exception):
    """The API server (or the database, for local_client) could not be reached."""


def _segment(value: str) -> str:
    return quote(value, safe="")


def _date(value: datetime | str) -> str:
    return value.isoformat() if isinstance(value, datetime) else value


class ApiClient:
    """Every operation of the experimental API, returning the API's JSON values."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def _call(self, method: str, path: str, json: Any = None,
              params: Mapping[str, Any] | None = None) -> Any:
        return self._read(self.transport.request(method, path, json=json, params=params))

    @staticmethod
    def _read(answer: Answer, text: bool = False) -> Any:
        """The answer's JSON value (its text, with ``text``), or the error it stands for."""
        try:
            payload = json.loads(answer.body)
        except ValueError:
            payload = None
        if answer.status >= 400:
            message = payload.get("error") if isinstance(payload, dict) else None
            if not isinstance(message, str):
                shown = answer.body.decode("utf-8", "replace") or answer.reason
                first = shown.strip().splitlines()
                message = f"HTTP {answer.status}: {first[0][:200] if first else ''}"
            if answer.status == 503:
                raise ClientConnectionError(message)
            headers = [(name, value) for name in _ERROR_HEADERS
                       for value in answer.header(name)]
            raise error_for_status(answer.status, message, headers)
        if text:
            return answer.body.decode("utf-8", "replace")
        if payload is None:
            raise ApiError(f"non-JSON answer from {answer.source}", answer.status)
        return payload

    def test(self) -> dict[str, Any]:
        """``{"status": "OK"}`` when the API answers."""
        return dict(self._call("GET", "/test"))

    def info(self) -> dict[str, Any]:
        """The plugin's ``version`` and the ``flavor`` of the database it serves."""
        return dict(self._call("GET", "/info"))

    def trigger_dag(self, dag_id: str, run_id: str | None = None, conf: Any = None,
                    execution_date: datetime | str | None = None,
                    replace_microseconds: bool | None = None) -> dict[str, Any]:
        """Create a DAG run; returns ``message``, ``execution_date`` and ``run_id``.

        ``replace_microseconds`` goes as the string both reference servers understand."""
        body: dict[str, Any] = {}
        if run_id is not None:
            body["run_id"] = run_id
        if conf is not None:
            body["conf"] = conf
        if execution_date is not None:
            body["execution_date"] = _date(execution_date)
        if replace_microseconds is not None:
            body["replace_microseconds"] = "true" if replace_microseconds else "false"
        return dict(self._call("POST", f"/dags/{_segment(dag_id)}/dag_runs", json=body))

    def get_dag_runs(self, dag_id: str, state: str | None = None, limit: int | None = None,
                     offset: int | None = None) -> list[dict[str, Any]]:
        """The DAG's runs, oldest first."""
        params = {k: v for k, v in (("state", state), ("limit", limit), ("offset", offset))
                  if v is not None}
        return list(self._call("GET", f"/dags/{_segment(dag_id)}/dag_runs", params=params))

    def get_dag_run_state(self, dag_id: str, execution_date: datetime | str) -> dict[str, Any]:
        """``{"state": ...}`` of one run."""
        path = f"/dags/{_segment(dag_id)}/dag_runs/{_segment(_date(execution_date))}"
        return dict(self._call("GET", path))

    def get_task(self, dag_id: str, task_id: str) -> dict[str, Any]:
        """The task's attributes as strings."""
        return dict(self._call("GET", f"/dags/{_segment(dag_id)}/tasks/{_segment(task_id)}"))

    def get_task_instance(self, dag_id: str, execution_date: datetime | str,
                          task_id: str) -> dict[str, Any]:
        """The task instance's columns as strings."""
        path = (f"/dags/{_segment(dag_id)}/dag_runs/{_segment(_date(execution_date))}"
                f"/tasks/{_segment(task_id)}")
        return dict(self._call("GET", path))

    def set_paused(self, dag_id: str, paused: bool) -> dict[str, Any]:
        """Pause or unpause the DAG."""
        flag = "true" if paused else "false"
        return dict(self._call("GET", f"/dags/{_segment(dag_id)}/paused/{flag}"))

    def pause_dag(self, dag_id: str) -> dict[str, Any]:
        return self.set_paused(dag_id, True)

    def unpause_dag(self, dag_id: str) -> dict[str, Any]:
        return self.set_paused(dag_id, False)

    def get_paused(self, dag_id: str) -> dict[str, Any]:
        """``{"is_paused": bool}``."""
        return dict(self._call("GET", f"/dags/{_segment(dag_id)}/paused"))

    def get_dag_code(self, dag_id: str) -> str:
        """The DAG's source text."""
        answer = self.transport.request("GET", f"/dags/{_segment(dag_id)}/code")
        return str(self._read(answer, text=True))

    def delete_dag(self, dag_id: str) -> dict[str, Any]:
        """Delete the DAG's records; returns how many rows went."""
        return dict(self._call("DELETE", f"/dags/{_segment(dag_id)}"))

    def get_lineage(self, dag_id: str, execution_date: datetime | str) -> dict[str, Any]:
        """``{"task_ids": {...}}``: each task's inlets and outlets in that run."""
        path = f"/lineage/{_segment(dag_id)}/{_segment(_date(execution_date))}"
        answer = dict(self._call("GET", path))
        answer.pop("message", None)  # the copy the server adds for Airflow 2's json_client
        return answer

    def latest_runs(self) -> dict[str, Any]:
        """``{"items": [...]}``: every DAG's newest run."""
        return dict(self._call("GET", "/latest_runs"))

    def get_pools(self) -> list[dict[str, Any]]:
        """Every pool."""
        return list(self._call("GET", "/pools"))

    def get_pool(self, name: str) -> dict[str, Any]:
        """One pool."""
        return dict(self._call("GET", f"/pools/{_segment(name)}"))

    def create_pool(self, name: str, slots: int, description: str) -> dict[str, Any]:
        """Create or update a pool."""
        body = {"name": name, "slots": slots, "description": description}
        return dict(self._call("POST", "/pools", json=body))

    def delete_pool(self, name: str) -> dict[str, Any]:
        """Delete a pool; returns it."""
        return dict(self._call("DELETE", f"/pools/{_segment(name)}"))

    def close(self) -> None:
        """Release connections."""
        self.transport.close()

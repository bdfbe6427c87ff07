"""The client interface both implementations meet (httpx's model: one API, two transports)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any


class ClientConnectionError(Exception):
    """The API server (or the database, for local_client) could not be reached."""


class ApiClient(ABC):
    """Every operation of the experimental API, returning the API's JSON values."""

    @abstractmethod
    def test(self) -> dict[str, Any]:
        """``{"status": "OK"}`` when the API answers."""

    @abstractmethod
    def trigger_dag(self, dag_id: str, run_id: str | None = None, conf: Any = None,
                    execution_date: datetime | str | None = None,
                    replace_microseconds: bool | None = None) -> dict[str, Any]:
        """Create a DAG run; returns ``message``, ``execution_date`` and ``run_id``."""

    @abstractmethod
    def get_dag_runs(self, dag_id: str, state: str | None = None, limit: int | None = None,
                     offset: int | None = None) -> list[dict[str, Any]]:
        """The DAG's runs, oldest first."""

    @abstractmethod
    def get_dag_run_state(self, dag_id: str, execution_date: datetime | str) -> dict[str, Any]:
        """``{"state": ...}`` of one run."""

    @abstractmethod
    def get_task(self, dag_id: str, task_id: str) -> dict[str, Any]:
        """The task's attributes as strings."""

    @abstractmethod
    def get_task_instance(self, dag_id: str, execution_date: datetime | str,
                          task_id: str) -> dict[str, Any]:
        """The task instance's columns as strings."""

    @abstractmethod
    def set_paused(self, dag_id: str, paused: bool) -> dict[str, Any]:
        """Pause or unpause the DAG."""

    def pause_dag(self, dag_id: str) -> dict[str, Any]:
        return self.set_paused(dag_id, True)

    def unpause_dag(self, dag_id: str) -> dict[str, Any]:
        return self.set_paused(dag_id, False)

    @abstractmethod
    def get_paused(self, dag_id: str) -> dict[str, Any]:
        """``{"is_paused": bool}``."""

    @abstractmethod
    def latest_runs(self) -> dict[str, Any]:
        """``{"items": [...]}``: every DAG's newest run."""

    @abstractmethod
    def get_pools(self) -> list[dict[str, Any]]:
        """Every pool."""

    @abstractmethod
    def get_pool(self, name: str) -> dict[str, Any]:
        """One pool."""

    @abstractmethod
    def create_pool(self, name: str, slots: int, description: str) -> dict[str, Any]:
        """Create or update a pool."""

    @abstractmethod
    def delete_pool(self, name: str) -> dict[str, Any]:
        """Delete a pool; returns it."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

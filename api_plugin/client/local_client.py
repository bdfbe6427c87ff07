"""local_client: the operations called in-process on the configured database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from api_plugin.client.base import ApiClient, ClientConnectionError
from api_plugin.services import ApiService
from api_plugin.settings.config import Config
from api_plugin.store import DatabaseUnavailable, Store

T = TypeVar("T")


class LocalClient(ApiClient):
    """Straight to the database through the same service layer the server uses."""

    def __init__(self, store: Store, allowed_run_id_pattern: str | None = None) -> None:
        self.store = store
        self.service = ApiService(store, allowed_run_id_pattern=allowed_run_id_pattern)

    @classmethod
    def from_config(cls, config: Config) -> LocalClient:
        try:
            return cls(Store.open(config.sql_alchemy_conn), config.allowed_run_id_pattern)
        except DBAPIError as exc:
            raise ClientConnectionError(f"database unreachable: {exc.orig}") from None

    def _call(self, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except DatabaseUnavailable:
            raise ClientConnectionError("The metadata database is unavailable") from None

    def test(self) -> dict[str, Any]:
        return self._call(self.service.test)

    def trigger_dag(self, dag_id: str, run_id: str | None = None, conf: Any = None,
                    execution_date: datetime | str | None = None,
                    replace_microseconds: bool | None = None) -> dict[str, Any]:
        return self._call(lambda: self.service.trigger_dag(
            dag_id, run_id=run_id, conf=conf, execution_date=execution_date,
            replace_microseconds=replace_microseconds))

    def get_dag_runs(self, dag_id: str, state: str | None = None, limit: int | None = None,
                     offset: int | None = None) -> list[dict[str, Any]]:
        return self._call(lambda: self.service.get_dag_runs(dag_id, state, limit, offset))

    def get_dag_run_state(self, dag_id: str, execution_date: datetime | str) -> dict[str, Any]:
        return self._call(lambda: self.service.get_dag_run_state(dag_id, execution_date))

    def get_task(self, dag_id: str, task_id: str) -> dict[str, Any]:
        return self._call(lambda: self.service.get_task(dag_id, task_id))

    def get_task_instance(self, dag_id: str, execution_date: datetime | str,
                          task_id: str) -> dict[str, Any]:
        return self._call(lambda: self.service.get_task_instance(dag_id, execution_date, task_id))

    def set_paused(self, dag_id: str, paused: bool) -> dict[str, Any]:
        return self._call(lambda: self.service.set_paused(dag_id, paused))

    def get_paused(self, dag_id: str) -> dict[str, Any]:
        return self._call(lambda: self.service.get_paused(dag_id))

    def latest_runs(self) -> dict[str, Any]:
        return self._call(self.service.latest_runs)

    def get_pools(self) -> list[dict[str, Any]]:
        return self._call(self.service.get_pools)

    def get_pool(self, name: str) -> dict[str, Any]:
        return self._call(lambda: self.service.get_pool(name))

    def create_pool(self, name: str, slots: int, description: str) -> dict[str, Any]:
        return self._call(lambda: self.service.create_pool(name, slots, description))

    def delete_pool(self, name: str) -> dict[str, Any]:
        return self._call(lambda: self.service.delete_pool(name))

    def close(self) -> None:
        self.store.dispose()

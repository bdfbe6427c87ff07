"""The API's operations, with no HTTP in them: views and local_client both call these.

Every method takes plain Python values, checks them, and either returns the JSON-ready
answer or raises an ``api_plugin.errors.ApiError`` carrying the status and text.
"""

from __future__ import annotations

from typing import Any

from api_plugin import __version__
from api_plugin.run_ids import DEFAULT_ALLOWED_PATTERN, RunIdRule, check_run_id
from api_plugin.services import dags, lineage, pools, runs, tasks
from api_plugin.services.trigger import parse_trigger, trigger_dag_run
from api_plugin.store import Store
from api_plugin.web.rendering import Rendered, Streamed

#: The health answer, its JSON encoded once.
_TEST_ANSWER = Rendered({"status": "OK"})


class ApiService:
    """The operations of the experimental API over one metadata database."""

    def __init__(self, store: Store, *, allowed_run_id_pattern: str | None = None) -> None:
        self.store = store
        generated = store.flavor.generated_run_id_pattern
        self.run_id_rule = None if generated is None else RunIdRule(
            allowed_run_id_pattern or DEFAULT_ALLOWED_PATTERN, generated)

    @property
    def flavor(self) -> str:
        return self.store.flavor.name

    def test(self) -> dict[str, str]:
        return _TEST_ANSWER

    def info(self) -> dict[str, str]:
        return {"version": __version__, "flavor": self.store.flavor.name}

    def trigger_dag(
        self,
        dag_id: str,
        run_id: Any = None,
        conf: Any = None,
        execution_date: Any = None,
        replace_microseconds: Any = None,
        user: str | None = None,
    ) -> dict[str, str]:
        request = parse_trigger(dag_id, run_id, conf, execution_date, replace_microseconds)
        if request.run_id is not None and self.run_id_rule is not None:
            check_run_id(request.run_id, self.run_id_rule)
        return trigger_dag_run(self.store, request, user)

    def get_dag_runs(
        self, dag_id: str, state: str | None = None, limit: Any = None, offset: Any = None,
        url_base: str = "",
    ) -> list[dict[str, Any]]:
        return runs.get_dag_runs(self.store, dag_id, state, limit, offset, url_base)

    def stream_dag_runs(
        self, dag_id: str, state: str | None = None, limit: Any = None, offset: Any = None,
        url_base: str = "",
    ) -> list[dict[str, Any]] | Streamed:
        """``get_dag_runs`` with a list of no ``limit`` streamed (the web's run list)."""
        return runs.stream_dag_runs(self.store, dag_id, state, limit, offset, url_base)

    def get_dag_run_state(self, dag_id: str, execution_date: Any) -> dict[str, Any]:
        return runs.get_dag_run_state(self.store, dag_id, execution_date)

    def get_lineage(self, dag_id: str, execution_date: Any) -> dict[str, Any]:
        return lineage.get_lineage(self.store, dag_id, execution_date)

    def latest_runs(self, url_base: str = "") -> dict[str, Any]:
        return runs.latest_runs(self.store, url_base)

    def get_task(self, dag_id: str, task_id: str) -> dict[str, str]:
        return tasks.get_task(self.store, dag_id, task_id)

    def get_task_instance(self, dag_id: str, execution_date: Any, task_id: str) -> dict[str, str]:
        return tasks.get_task_instance(self.store, dag_id, execution_date, task_id)

    def set_paused(self, dag_id: str, paused: Any) -> dict[str, str]:
        return dags.set_paused(self.store, dag_id, paused)

    def get_paused(self, dag_id: str) -> dict[str, bool]:
        return dags.get_paused(self.store, dag_id)

    def get_dag_code(self, dag_id: str) -> str:
        return dags.get_dag_code(self.store, dag_id)

    def delete_dag(self, dag_id: str) -> dict[str, Any]:
        return dags.delete_dag(self.store, dag_id)

    def get_pools(self) -> list[dict[str, Any]]:
        return pools.get_pools(self.store)

    def get_pool(self, name: str) -> dict[str, Any]:
        return pools.get_pool(self.store, name)

    def create_pool(self, name: Any, slots: Any, description: Any) -> dict[str, Any]:
        return pools.create_pool(self.store, name, slots, description)

    def delete_pool(self, name: str) -> dict[str, Any]:
        return pools.delete_pool(self.store, name)

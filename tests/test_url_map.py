"""The URL map is the one list of endpoints: every surface that lists them follows it.

Adding a route without the rest fails here: its entry in the REST API reference
(``docs/``), its operation in the OpenAPI document, its method on the client (which both
transports share: json_client and local_client write no operation of their own), and
its place in the authentication matrix of ``tests/test_auth.py``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from werkzeug.routing import Map

from api_plugin.client import ApiClient
from api_plugin.client.json_client import JsonClient
from api_plugin.client.local_client import LocalClient
from api_plugin.client.transport import Answer
from api_plugin.settings.config import DEFAULTS
from api_plugin.web import views
from api_plugin.web.openapi import openapi_document
from api_plugin.web.routes import build_url_map
from tests.test_auth import route_paths

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PREFIX = DEFAULTS["api"]["prefix"].rstrip("/")

#: Routes the client leaves out on purpose, and why.
NOT_IN_THE_CLIENT = {
    ("GET", "/openapi.json"): "the API's own description, not an operation",
    ("DELETE", "/dags/<dag_id>/delete_dag"): "Airflow 2's json_client's path for delete_dag; "
                                             "the client sends DELETE /dags/<dag_id>",
}

#: ``.. http:get:: /api/experimental/dags/(dag_id)`` -> ("GET", "/dags/<dag_id>")
_ENTRY = re.compile(r"^\.\. http:(get|post|put|patch|delete|head|options)::\s+(\S+)\s*$",
                    re.MULTILINE)
#: httpdomain's ``(name)`` and ``(type:name)`` path parameters.
_DOC_PARAM = re.compile(r"\((?:[^():]+:)?(\w+)\)")
#: werkzeug's ``<name>`` and ``<converter:name>``.
_RULE_PARAM = re.compile(r"<(?:[^<>:]+:)?(\w+)>")


def url_map() -> Map:
    return build_url_map()


def routed() -> set[tuple[str, str]]:
    """(method, rule) of every rule, parameters written ``<name>``; HEAD follows GET."""
    return {
        (method, _RULE_PARAM.sub(r"<\1>", rule.rule))
        for rule in url_map().iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }


def matched(method: str, path: str) -> tuple[str, str]:
    """The (method, rule) a request for ``path`` reaches."""
    rule, _ = url_map().bind("localhost").match(path, method, return_rule=True)
    return method, _RULE_PARAM.sub(r"<\1>", rule.rule)


def documented() -> dict[tuple[str, str], list[str]]:
    """(method, rule) of every reference entry in docs/, with the files that hold it."""
    found: dict[tuple[str, str], list[str]] = {}
    for page in sorted(DOCS.rglob("*.rst")):
        if "_build" in page.parts:
            continue
        for method, path in _ENTRY.findall(page.read_text(encoding="utf-8")):
            assert path.startswith(PREFIX + "/"), f"{page.name}: {path} is not under {PREFIX}"
            rule = _DOC_PARAM.sub(r"<\1>", path[len(PREFIX):])
            found.setdefault((method.upper(), rule), []).append(page.name)
    return found


def test_every_endpoint_is_a_view_function() -> None:
    """Two hops from URL to behaviour: the rule's endpoint is the view itself."""
    for rule in url_map().iter_rules():
        assert inspect.isfunction(rule.endpoint), rule.rule
        assert rule.endpoint.__module__ == views.__name__, rule.rule


def test_every_route_has_its_reference_entry() -> None:
    missing = sorted(routed() - set(documented()))
    assert not missing, (
        "routes without an entry in docs/rest-api-ref.rst (add `.. http:<method>:: "
        f"{PREFIX}/...` with parameters, answers, errors and an example): {missing}"
    )


def test_every_reference_entry_is_a_route() -> None:
    stale = sorted(set(documented()) - routed())
    assert not stale, f"documented endpoints the URL map does not have: {stale}"


def test_each_endpoint_is_documented_once() -> None:
    twice = {key: pages for key, pages in documented().items() if len(pages) > 1}
    assert not twice, f"endpoints documented more than once: {twice}"


def test_the_check_reads_both_sides() -> None:
    """The comparisons here are only worth something if each side parses as expected."""
    assert ("GET", "/dags/<dag_id>/dag_runs/<execution_date>/tasks/<task_id>") in routed()
    assert ("POST", "/pools") in documented()
    assert len(documented()) == len(routed()) >= 19


def test_every_route_is_an_openapi_operation() -> None:
    paths = openapi_document()["paths"]
    operations = {(method.upper(), re.sub(r"\{(\w+)\}", r"<\1>", path))
                  for path, methods in paths.items() for method in methods}
    assert operations == routed()
    ids = [op["operationId"] for methods in paths.values() for op in methods.values()]
    assert len(ids) == len(set(ids)), "operation ids must be unique"


def test_the_auth_matrix_covers_every_route() -> None:
    covered = [matched(method, path) for method, path in route_paths()]
    assert sorted(set(covered)) == sorted(routed())
    assert len(covered) == len(set(covered)), "a route is in the auth matrix twice"


class Recorder:
    """A transport that answers every request with an empty JSON value and keeps it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def request(self, method: str, path: str, *, json: Any = None,
                params: Mapping[str, Any] | None = None) -> Answer:
        self.sent.append((method, path))
        return Answer(200, "OK", [("Content-Type", "application/json")], b"{}", "recorded")

    def close(self) -> None:
        pass


#: An argument for each parameter name the client's methods take.
_ARGUMENTS = {"dag_id": "d", "task_id": "t", "execution_date": "2025-01-01T00:00:00",
              "name": "p", "paused": True, "slots": 1, "description": "x"}


def client_operations() -> list[str]:
    return [name for name, member in vars(ApiClient).items()
            if inspect.isfunction(member) and not name.startswith("_") and name != "close"]


def test_every_route_has_its_client_method() -> None:
    recorder = Recorder()
    client = ApiClient(recorder)
    for name in client_operations():
        parameters = inspect.signature(getattr(ApiClient, name)).parameters.values()
        required = {p.name: _ARGUMENTS[p.name] for p in parameters
                    if p.name != "self" and p.default is inspect.Parameter.empty}
        getattr(client, name)(**required)
    reached = {matched(method, path) for method, path in recorder.sent}
    assert set(NOT_IN_THE_CLIENT) <= routed(), "a left-out route that is no route"
    missing = sorted(routed() - reached - set(NOT_IN_THE_CLIENT))
    assert not missing, f"routes no client method calls (add one to ApiClient): {missing}"
    assert not reached & set(NOT_IN_THE_CLIENT)


def test_the_transports_share_every_operation() -> None:
    """json_client and local_client are constructors of a transport, nothing more: one
    implementation of every operation, so their answers and errors cannot differ."""
    operations = set(client_operations())
    for cls in (JsonClient, LocalClient):
        own = {name for name, member in vars(cls).items() if not name.startswith("_")
               and (inspect.isfunction(member) or isinstance(member, property))}
        assert not own & operations, f"{cls.__name__} implements {own & operations}"
        assert own <= {"from_config", "base", "close"}, own

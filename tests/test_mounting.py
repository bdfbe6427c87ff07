"""The three ways users run the API: inside a host's process, standalone under gunicorn
(module and Paste ini), and composed with other middleware — all through WebTest's PEP
3333 lint or real processes over loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import webtest
from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix

from api_plugin.auth.base import AuthMiddleware
from api_plugin.auth.simple import DefaultBackend, DenyAllBackend
from api_plugin.serving.mount import build_api, mount, mount_entry_points, mount_into
from api_plugin.settings.config import Config
from tests.servers import WSGI_TARGET, Server, request
from tests.test_clients import seeded_database

REPO = Path(__file__).resolve().parent.parent
#: What a server on loopback passes (WebTest sets no REMOTE_ADDR, which the open backend
#: refuses: it cannot tell where such a request came from).
LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}


@pytest.fixture
def db_url(make_database: Callable[[str, str], str]) -> str:
    return seeded_database(make_database, "airflow2")


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Config:
    return Config.load(tmp_path / "none.cfg", environ={}, database__sql_alchemy_conn=db_url)


class EnvironSpy:
    """Middleware that records the environ the API sees."""

    def __init__(self, app: Any) -> None:
        self.app, self.seen = app, []  # type: list[dict[str, Any]]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.seen.append(dict(environ))
        return self.app(environ, start_response)  # type: ignore[no-any-return]


def flask_host() -> Flask:
    host = Flask("host")

    @host.route("/")
    def index() -> str:
        return "host index"

    @host.route("/hello/<name>")
    def hello(name: str) -> dict[str, str]:
        return {"hello": name}

    return host


def test_flask_host_with_one_call_mount(config: Config) -> None:
    host = flask_host()
    host.wsgi_app = mount(host.wsgi_app, config)  # type: ignore[method-assign]
    client = webtest.TestApp(host, extra_environ=LOOPBACK)
    assert client.get("/").text == "host index"
    assert client.get("/hello/bob").json == {"hello": "bob"}
    assert client.get("/api/experimental/test").json == {"status": "OK"}
    body = client.post_json("/api/experimental/dags/example_etl/dag_runs",
                            {"execution_date": "2025-01-01T00:00:00"}).json
    assert body["run_id"] == "manual__2025-01-01T00:00:00+00:00"
    assert client.get("/api/experimental/nope", status=404).json["error"].startswith("Not found")
    assert client.get("/nope", status=404).content_type == "text/html"  # the host's own 404


def test_plain_host_under_its_own_mount_point(config: Config) -> None:
    """The host itself mounted at /host: the API sees SCRIPT_NAME=/host/api/experimental
    and renders its UI links under /host."""
    def plain_host(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"plain " + environ["PATH_INFO"].encode()]

    spy = EnvironSpy(build_api(config))
    stack = DispatcherMiddleware(lambda e, s: [], {"/host": mount_into(plain_host, spy)})
    client = webtest.TestApp(stack, extra_environ=LOOPBACK)
    assert client.get("/host/other").text == "plain /other"
    client.post_json("/host/api/experimental/dags/example_etl/dag_runs",
                     {"execution_date": "2025-01-01T00:00:00"})
    runs = client.get("/host/api/experimental/dags/example_etl/dag_runs").json
    assert spy.seen[-1]["SCRIPT_NAME"] == "/host/api/experimental"
    assert spy.seen[-1]["PATH_INFO"] == "/dags/example_etl/dag_runs"
    assert runs[0]["dag_run_url"].startswith("/host/dags/example_etl/graph?execution_date=")
    latest = client.get("/host/api/experimental/latest_runs").json["items"][0]
    assert latest["dag_run_url"] == runs[0]["dag_run_url"]
    assert client.get("/host/api/experimental/openapi.json").json["servers"] == [
        {"url": "/host/api/experimental"}]


def test_entry_point_group_mounts_without_importing_by_name(
        config: Config, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_PLUGIN__DATABASE__SQL_ALCHEMY_CONN", db_url)
    host = flask_host()
    client = webtest.TestApp(mount_entry_points(host.wsgi_app), extra_environ=LOOPBACK)
    assert client.get("/api/experimental/test").json == {"status": "OK"}
    assert client.get("/hello/x").json == {"hello": "x"}


@pytest.mark.parametrize("order", ["proxyfix-outside", "proxyfix-inside"])
def test_middleware_composition_under_lint(config: Config, order: str) -> None:
    spy = EnvironSpy(build_api(config.with_overrides(api__auth_backend="default",
                                                     api__allow_open_api="True")))
    open_api = DefaultBackend(allow_open_api=True)
    if order == "proxyfix-outside":
        inner = AuthMiddleware(spy, [open_api])
        stack: Any = ProxyFix(mount_into(lambda e, s: [], inner), x_for=1)  # type: ignore[arg-type]
    else:
        stack = mount_into(lambda e, s: [],
                           AuthMiddleware(ProxyFix(spy, x_for=1), [open_api]))  # type: ignore[arg-type]
    client = webtest.TestApp(stack, lint=True)
    client.get("/api/experimental/test", headers={"X-Forwarded-For": "203.0.113.7"},
               extra_environ=LOOPBACK)
    assert spy.seen[-1]["REMOTE_ADDR"] == "203.0.113.7"
    client.head("/api/experimental/test", extra_environ=LOOPBACK)
    client.put("/api/experimental/test", status=405, extra_environ=LOOPBACK)


@pytest.mark.parametrize("order", ["proxyfix-outside", "proxyfix-inside", "no-proxyfix"])
def test_the_open_backend_fails_closed_behind_a_proxy(config: Config, order: str) -> None:
    """Behind a proxy every client looks local; a client can also claim to be local in
    X-Forwarded-For when ProxyFix trusts it. The open backend's guard refuses both."""
    api = build_api(config.with_overrides(api__auth_backend="default"))
    stack: Any = {"proxyfix-outside": lambda: ProxyFix(mount_into(lambda e, s: [], api),
                                                       x_for=1),
                  "proxyfix-inside": lambda: mount_into(lambda e, s: [],
                                                        ProxyFix(api, x_for=1)),
                  "no-proxyfix": lambda: mount_into(lambda e, s: [], api)}[order]()
    client = webtest.TestApp(stack, lint=True)
    attacks = [
        ({"X-Forwarded-For": "127.0.0.1"}, {"REMOTE_ADDR": "198.51.100.9"}),  # a lie
        ({"X-Forwarded-For": "198.51.100.9"}, LOOPBACK),  # a proxy on loopback
        ({"Forwarded": "for=198.51.100.9"}, LOOPBACK),
        ({"X-Real-IP": "198.51.100.9"}, LOOPBACK),
        ({}, {"REMOTE_ADDR": ""}),  # gunicorn on a unix socket
        ({}, {}),  # no address at all
        ({}, {"REMOTE_ADDR": "198.51.100.9"}),
    ]
    for headers, environ in attacks:
        response = client.get("/api/experimental/test", headers=headers,
                              extra_environ=environ, status=403)
        assert "allow_open_api" in response.json["error"], (headers, environ)
    # A stack with ProxyFix is behind a proxy by construction: even a request without
    # forwarding headers cannot be shown to be local. Without ProxyFix, loopback is.
    expected = 200 if order == "no-proxyfix" else 403
    client.get("/api/experimental/test", extra_environ=LOOPBACK, status=expected)


def test_auth_stack_outside_the_mount(config: Config) -> None:
    """An auth filter wrapped around the whole host protects the API and the host."""
    stack = AuthMiddleware(mount(flask_host().wsgi_app, config), [DenyAllBackend()])
    client = webtest.TestApp(stack)
    assert client.get("/api/experimental/test", status=403).json == {"error": "Forbidden"}
    assert client.get("/", status=403).json == {"error": "Forbidden"}


@pytest.fixture(params=["module", "paste"])
def gunicorn_server(request: pytest.FixtureRequest, db_url: str,
                    spawn_server: Callable[..., Server]) -> str:
    """gunicorn, 3 workers, on the module target or the example Paste file: the API's URL."""
    target = (WSGI_TARGET if request.param == "module"
              else ["--paste", str(REPO / "examples" / "paste.ini")])
    return spawn_server(db_url, workers=3, gunicorn=target).api


def test_gunicorn_workers_share_one_database(gunicorn_server: str) -> None:
    created = []
    for day in range(1, 10):
        status, body = request(gunicorn_server + "/dags/example_etl/dag_runs",
                               {"execution_date": f"2025-01-0{day}T00:00:00"})
        assert status == 200, body
        created.append(body["run_id"])
    for _ in range(6):  # whichever worker answers sees every run
        status, runs = request(gunicorn_server + "/dags/example_etl/dag_runs")
        assert [r["run_id"] for r in runs] == created
    assert request(gunicorn_server.rsplit("/api/", 1)[0] + "/x")[0] == 404


def test_hosts_start_while_the_database_is_unreachable_and_heal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``mount()``, the entry-point mount and the Paste app and filters do not fail their
    host's start when the database cannot be reached (a gunicorn worker that failed to
    boot would stop the whole server): the API answers 503 until the database is there,
    then serves, with nothing restarted."""
    from api_plugin.serving import paste
    from api_plugin.store import Store

    database = tmp_path / "airflow.db"
    database.write_bytes(b"not a database yet " * 256)  # what the driver cannot open
    url = f"sqlite:///{database}"
    monkeypatch.setenv("API_PLUGIN__DATABASE__SQL_ALCHEMY_CONN", url)
    monkeypatch.setattr(paste, "_stores", {})
    config = Config.load(tmp_path / "none.cfg", environ={}, database__sql_alchemy_conn=url)
    settings = {"database__sql_alchemy_conn": url}
    stacks = {
        "mount": mount(flask_host().wsgi_app, config),
        "entry points": mount_entry_points(flask_host().wsgi_app),
        "paste": paste.mount_composite_factory(
            _PasteLoader(paste.password_filter_factory(paste.app_factory({}, **settings), {},
                                                       **settings)), {}, api="api"),
    }
    clients = {name: webtest.TestApp(stack, extra_environ=LOOPBACK)
               for name, stack in stacks.items()}
    for name, client in clients.items():
        down = client.get("/api/experimental/pools", status=503, expect_errors=True)
        assert down.json == {"error": "The API is not available: see the server's log"}, name
        assert down.headers["Retry-After"] == "1"
    database.unlink()
    Store.open(url, create=True).dispose()  # `api-plugin db init`: tables and default_pool
    assert clients["mount"].get("/api/experimental/pools").json[0]["pool"] == "default_pool"
    assert clients["entry points"].get("/api/experimental/test").json == {"status": "OK"}
    clients["paste"].get("/api/experimental/pools", status=401)  # the password filter built
    assert clients["mount"].get("/hello/x").json == {"hello": "x"}  # the host all along


class _PasteLoader:
    """What PasteDeploy hands a composite: ``get_app`` by name."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def get_app(self, name: str, global_conf: dict[str, Any]) -> Any:
        assert name == "api"
        return self.api

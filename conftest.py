"""Shared fixtures: metadata databases of both flavors, on SQLite and on PostgreSQL.

SQLite databases are built from the exact DDL real Airflow created (tests/data), so the
plugin is tested against Airflow's own schema, not its own idea of it. PostgreSQL runs
when ``API_PLUGIN_TEST_PG_URL`` names a server (``.ci/run`` starts one); there the
tables come from the plugin's table definitions, which mirror the same DDL.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import URL, make_url
from werkzeug.test import Client

from api_plugin.cli.dagfiles import fileloc_hash, load_dags
from api_plugin.flavors import DagRecord, flavor_named
from api_plugin.store import Store
from api_plugin.store.tables import AIRFLOW1, AIRFLOW2, AIRFLOW3
from tests.servers import Server, start_server

DATA = Path(__file__).parent / "tests" / "data"
REFERENCE_VERSION = {AIRFLOW1: "1.10.15", AIRFLOW2: "2.10.5", AIRFLOW3: "3.3.2"}
FLAVOR_NAMES = [AIRFLOW2, AIRFLOW1, AIRFLOW3]
PG_URL = os.environ.get("API_PLUGIN_TEST_PG_URL")
PREFIX = "/api/experimental"
ETL_NIGHTLY_SOURCE = "from airflow import DAG\n# etl_nightly, as dag_code stores it\n"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL-backed cases carry the ``postgres`` marker so tox can select them."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "postgresql":
            item.add_marker(pytest.mark.postgres)


def reference_serialized_dag(flavor: str) -> dict[str, Any]:
    """etl_nightly as the reference Airflow serialized it."""
    path = DATA / f"airflow-{REFERENCE_VERSION[flavor]}-serialized_dag-etl_nightly.json"
    return dict(json.loads(path.read_text()))


def _create_sqlite_schema(path: Path, flavor: str) -> None:
    ddl = (DATA / f"airflow-{REFERENCE_VERSION[flavor]}-schema.sql").read_text()
    # sqlite3's own bookkeeping table, listed by .schema, cannot be created by hand.
    ddl = ddl.replace("CREATE TABLE sqlite_sequence(name,seq);", "")
    conn = sqlite3.connect(path)
    try:
        conn.executescript(ddl)
        if flavor == AIRFLOW2:  # referenced by foreign keys of the reference DDL
            conn.executescript(
                "CREATE TABLE log_template (id INTEGER PRIMARY KEY, filename TEXT NOT NULL, "
                "elasticsearch_id TEXT NOT NULL, created_at TIMESTAMP NOT NULL);"
                "INSERT INTO log_template VALUES (1, 'f', 'e', '2024-01-01 00:00:00.000000');"
                'CREATE TABLE "trigger" (id INTEGER PRIMARY KEY, classpath VARCHAR(1000));')
        if flavor != AIRFLOW3:  # the 3.3.2 dump has it
            conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.commit()
    finally:
        conn.close()


def _create_pg_database(flavor: str) -> str:
    assert PG_URL is not None
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_plain(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(_plain(url))
    metadata = flavor_named(flavor).build_tables().metadata
    # A fresh Airflow 3 database has no FAB ab_user (add_fab_users_table makes one).
    metadata.create_all(engine, tables=[table for table in metadata.sorted_tables
                                        if not (flavor == AIRFLOW3 and table.name == "ab_user")])
    engine.dispose()
    return url


def _plain(url: str) -> URL:
    """``url`` without the plugin's own query options (``?prepare_threshold=5`` in the
    pgbouncer environment), which only the plugin's engines understand: the tests'
    bookkeeping engines are plain SQLAlchemy ones."""
    return make_url(url).difference_update_query(["prepare_threshold"])


def _drop_pg_database(url: str) -> None:
    assert PG_URL is not None
    name = make_url(url).database
    admin = create_engine(_plain(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def add_fab_users_table(url: str, flavor: str) -> None:
    """Airflow 3 keeps FAB's ``ab_user`` only with the FAB auth manager (or after an
    upgrade from 2.x): create it, as FAB's migrations would, where a test needs it."""
    if flavor == AIRFLOW3:
        engine = create_engine(_plain(url))
        flavor_named(AIRFLOW3).build_tables().users.create(engine, checkfirst=True)
        engine.dispose()


def seed_airflow_rows(store: Store) -> None:
    """What Airflow itself would have written: default_pool and the etl_nightly DAG."""
    t = store.tables
    document = reference_serialized_dag(store.flavor.name)
    fileloc = "/opt/airflow/dags/etl_nightly.py"
    now = datetime(2025, 1, 1, tzinfo=UTC)
    pool = {"pool": "default_pool", "slots": 128, "description": "Default pool"}
    if "include_deferred" in t.slot_pool.c:
        pool["include_deferred"] = False
    dag = {"dag_id": "etl_nightly", "is_paused": True, "is_active": True, "is_subdag": False,
           "fileloc": fileloc, "owners": "ops", "description": "nightly load",
           "schedule_interval": '"@daily"', "max_active_tasks": 16, "max_active_runs": 16,
           "max_consecutive_failed_dag_runs": 0, "has_task_concurrency_limits": False}
    with store.write() as conn:
        conn.execute(insert(t.slot_pool).values(**pool))
        if store.flavor.name == AIRFLOW3:
            # A fresh 3.x database has two log templates; the dag, its version, the
            # serialized document and the source as the DAG processor writes them.
            templates = t.metadata.tables["log_template"]
            for _ in range(2):
                conn.execute(insert(templates).values(filename="f", elasticsearch_id="e",
                                                      created_at=now))
            store.flavor.store_dag(conn, t, DagRecord(
                "etl_nightly", document, "0123456789abcdef0123456789abcdef", fileloc,
                ETL_NIGHTLY_SOURCE, dag), now)
            return
        conn.execute(insert(t.dag).values(**{k: v for k, v in dag.items() if k in t.dag.c}))
        conn.execute(insert(t.serialized_dag).values(
            dag_id="etl_nightly", fileloc=fileloc, fileloc_hash=fileloc_hash(fileloc),
            data=document, last_updated=now, dag_hash="0123456789abcdef0123456789abcdef"))
        conn.execute(insert(t.dag_code).values(
            fileloc_hash=fileloc_hash(fileloc), fileloc=fileloc, last_updated=now,
            source_code=ETL_NIGHTLY_SOURCE))


class LoopbackClient(Client):
    """werkzeug's test client with requests from 127.0.0.1, as a server on loopback
    passes them (werkzeug's own sets no REMOTE_ADDR, which the open backend refuses)."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        environ_base = dict(kwargs.pop("environ_base", None) or {})
        environ_base.setdefault("REMOTE_ADDR", "127.0.0.1")
        return super().open(*args, environ_base=environ_base, **kwargs)


@dataclass
class ApiHarness:
    """One database with the plugin's app over it, driven in-process."""

    flavor: str
    backend: str
    url: str
    store: Store
    client: Client
    #: Settings a test adds for apps it builds over this database (``app_with``).
    settings: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.open(PREFIX + path, method=method, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.call("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.call("DELETE", path, **kwargs)


BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


@pytest.fixture(params=FLAVOR_NAMES)
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_database(tmp_path: Path) -> Iterator[Callable[[str, str], str]]:
    """A factory of empty Airflow databases (schema only) of a flavor and backend."""
    created: list[str] = []

    def make(flavor: str, backend: str = "sqlite") -> str:
        if backend == "postgresql":
            url = _create_pg_database(flavor)
            created.append(url)
            return url
        path = tmp_path / f"airflow-{flavor}-{uuid.uuid4().hex[:6]}.db"
        _create_sqlite_schema(path, flavor)
        return f"sqlite:///{path}"

    yield make
    for url in created:
        _drop_pg_database(url)


@pytest.fixture
def make_seeded_store(
        make_database: Callable[[str, str], str]) -> Iterator[Callable[[str, str], Store]]:
    """A factory of stores over new databases of a flavor and backend, holding what
    Airflow itself would have written (``seed_airflow_rows``); disposed of after the
    test, before the databases are dropped."""
    opened: list[Store] = []

    def make(flavor: str, backend: str = "sqlite") -> Store:
        store = Store.open(make_database(flavor, backend))
        opened.append(store)
        seed_airflow_rows(store)
        return store

    yield make
    for store in opened:
        store.dispose()


@pytest.fixture
def api(
    flavor: str, backend: str, make_database: Callable[[str, str], str], tmp_path: Path
) -> Iterator[ApiHarness]:
    """The plugin over a seeded database: etl_nightly (Airflow's own serialization) and
    the packaged example_etl (loaded through ``dags load``)."""
    from api_plugin.cli.main import example_dags_dir
    from api_plugin.serving.mount import build_api, json_not_found, mount_into
    from api_plugin.settings.config import Config

    url = make_database(flavor, backend)
    store = Store.open(url)
    seed_airflow_rows(store)
    load_dags(store, example_dags_dir())
    # The login throttle's file of this test alone: no budget shared with other tests
    # (or another test run on the same machine).
    settings = {"api__auth_throttle_path": str(tmp_path / "throttle" / "t.sqlite3")}
    config = Config.load(environ={}, database__sql_alchemy_conn=url, api__auth_backend="default",
                         **settings)
    app = mount_into(json_not_found, build_api(config, store), PREFIX)
    yield ApiHarness(flavor, backend, url, store, LoopbackClient(app), settings)
    store.dispose()


@pytest.fixture
def spawn_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start real servers (``tests.servers.start_server``'s arguments, the folder left
    out); every one started is stopped after the test."""
    started: list[Server] = []

    def spawn(database_url: str | None = None, **options: Any) -> Server:
        started.append(start_server(tmp_path, database_url, **options))
        return started[-1]

    yield spawn
    for server in started:
        server.stop()


def cheap_hash(password: str, flavor: str) -> str:
    """A real hash of the flavor's kind at the lowest cost, so route matrices stay fast."""
    import bcrypt
    from werkzeug.security import generate_password_hash

    if flavor == AIRFLOW1:
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()
    return generate_password_hash(password, method="pbkdf2:sha256:1000")


@pytest.fixture
def users(api: ApiHarness, tmp_path: Path) -> dict[str, str]:
    """A user ``alice`` (password ``s3cret``) where the flavor keeps users: the user
    table, or on a fresh Airflow 3 the simple auth manager's users and passwords file."""
    from api_plugin.store.users import create_user

    if api.flavor == AIRFLOW3:
        passwords = tmp_path / "passwords.json"
        passwords.write_text('{"alice": "s3cret"}')
        api.settings.update(core__simple_auth_manager_users="alice:admin",
                            core__simple_auth_manager_passwords_file=str(passwords))
    else:
        create_user(api.store, "alice", cheap_hash("s3cret", api.flavor))
    return {"alice": "s3cret"}

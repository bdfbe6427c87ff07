"""A real Apache Airflow beside the plugin: its home, database and webserver.

Each Airflow runs from its own virtualenv, made by ``install_airflow.sh``: 2.10.5 in
``AIRFLOW_VENV`` (flavor airflow2), 1.10.15 under Python 3.8 in ``AIRFLOW1_VENV``
(flavor airflow1), 3.3.2 under Python 3.11 in ``AIRFLOW3_VENV`` (flavor airflow3, with
api_plugin pip-installed beside it so its api-server hosts the plugin). The plugin runs
in the test's own environment otherwise. Databases are SQLite files in the home (copied
with SQLite's online backup, so what Airflow 3 still holds in its WAL file is copied
too), or for 2.10.5 and 3.3.2 also databases on the PostgreSQL server of
``API_PLUGIN_TEST_PG_URL`` (copies made with ``CREATE DATABASE ... TEMPLATE``).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text

HERE = Path(__file__).parent
#: flavor -> (virtualenv, folder of DAG files written for that Airflow)
AIRFLOWS = {
    "airflow2": (Path(os.environ.get("AIRFLOW_VENV", "/opt/af2")), HERE / "dags"),
    "airflow1": (Path(os.environ.get("AIRFLOW1_VENV", "/opt/af1")), HERE / "dags1"),
    "airflow3": (Path(os.environ.get("AIRFLOW3_VENV", "/opt/af3")), HERE / "dags3"),
}
#: Airflow 3's simple auth manager users (user:role) and their passwords file's content.
AIRFLOW3_USERS = "admin:admin,viewer:viewer"
AIRFLOW3_PASSWORDS = {"admin": "admin-pw", "viewer": "viewer-pw"}
#: A fixed ``[api_auth] jwt_secret``, so every api-server and the plugin share tokens.
AIRFLOW3_JWT_SECRET = "compat-suite-jwt-secret-" + "0123456789abcdef" * 4  # >= 64 bytes


PG_URL = os.environ.get("API_PLUGIN_TEST_PG_URL")


def _pg_admin(statement: str) -> None:
    assert PG_URL is not None
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


@dataclass
class AirflowHome:
    """An AIRFLOW_HOME whose database (a URL) Airflow migrated and filled with its DAGs."""

    path: Path
    database: str
    flavor: str = "airflow2"
    backend: str = "sqlite"
    copies: dict[str, str] = field(default_factory=dict)

    @property
    def venv(self) -> Path:
        return AIRFLOWS[self.flavor][0]

    def env(self, database: str | None = None) -> dict[str, str]:
        db = database or self.database
        if self.flavor == "airflow3":
            return self.env3(db)
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "API_PLUGIN"))},
            "AIRFLOW_HOME": str(self.path),
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(AIRFLOWS[self.flavor][1]),
            # Airflow 1.10 spells these in [core] and [api] differently.
            "AIRFLOW__CORE__SQL_ALCHEMY_CONN": db,
            "AIRFLOW__CORE__STORE_SERIALIZED_DAGS": "True",
            "AIRFLOW__CORE__STORE_DAG_CODE": "True",
            "AIRFLOW__API__AUTH_BACKEND": "airflow.api.auth.backend.default",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db,
            "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
            "AIRFLOW__API__ENABLE_EXPERIMENTAL_API": "True",
            "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.default",
            "AIRFLOW__WEBSERVER__SECRET_KEY": "compat-suite",
            "AIRFLOW__WEBSERVER__WORKERS": "2",
            "AIRFLOW__WEBSERVER__WEB_SERVER_WORKER_TIMEOUT": "120",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }

    def env3(self, db: str) -> dict[str, str]:
        """Airflow 3.3.2: LocalExecutor with little parallelism, the simple auth manager
        with known passwords, a fixed JWT secret, nothing listening beyond loopback."""
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "API_PLUGIN"))},
            "AIRFLOW_HOME": str(self.path),
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(AIRFLOWS[self.flavor][1]),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": AIRFLOW3_USERS,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.path / "passwords.json"),
            "AIRFLOW__API_AUTH__JWT_SECRET": AIRFLOW3_JWT_SECRET,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }

    def airflow(self, *args: str, database: str | None = None, timeout: float = 300) -> str:
        done = subprocess.run([str(self.venv / "bin" / "airflow"), *args],
                              env=self.env(database),
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def copy_database(self, name: str) -> str:
        """A copy of the home's database, as it is now, named ``name``; its URL."""
        if self.backend == "postgresql":
            assert PG_URL is not None
            base = self.database.rsplit("/", 1)[1]
            copy = f"{base}_{name}"
            _pg_admin(f'CREATE DATABASE "{copy}" TEMPLATE "{base}"')
            url = PG_URL.rsplit("/", 1)[0] + "/" + copy
        else:
            target = self.path / f"{name}.db"
            source = sqlite3.connect(self.database.removeprefix("sqlite:///"))
            copied = sqlite3.connect(target)
            try:
                source.backup(copied)  # what `sqlite3 db ".backup copy"` does: WAL included
            finally:
                copied.close()
                source.close()
            url = f"sqlite:///{target}"
        self.copies[name] = url
        return url

    def drop_databases(self) -> None:
        """Remove the PostgreSQL databases this home made (files go with the home)."""
        if self.backend == "postgresql":
            for url in [*self.copies.values(), self.database]:
                _pg_admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def make_home(path: Path, flavor: str = "airflow2", backend: str = "sqlite") -> AirflowHome:
    """Migrate a fresh database and serialize the compat DAGs into it, with Airflow's
    own commands (1.10 has no ``dags reserialize``: ``serialize1.py`` calls the same
    model methods its scheduler uses)."""
    if backend == "postgresql":
        if PG_URL is None:
            raise RuntimeError("API_PLUGIN_TEST_PG_URL is not set: start PostgreSQL "
                               "as .ci/run does")
        name = f"compat_{uuid.uuid4().hex[:10]}"
        _pg_admin(f'CREATE DATABASE "{name}"')
        database = PG_URL.rsplit("/", 1)[0] + "/" + name
    else:
        database = f"sqlite:///{path / 'airflow.db'}"
    home = AirflowHome(path, database, flavor, backend)
    if not (home.venv / "bin" / "airflow").exists():
        raise RuntimeError(f"no Airflow in {home.venv}: run tests/compat/install_airflow.sh")
    path.mkdir(parents=True, exist_ok=True)
    if flavor == "airflow1":
        home.airflow("initdb")
        done = subprocess.run([str(home.venv / "bin" / "python"), str(HERE / "serialize1.py")],
                              env=home.env(), capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"serialize1.py failed:\n{done.stderr[-3000:]}")
    else:
        if flavor == "airflow3":
            (path / "passwords.json").write_text(json.dumps(AIRFLOW3_PASSWORDS))
        home.airflow("db", "migrate")
        home.airflow("dags", "reserialize")
    return home


def wait_for(url: str, proc: subprocess.Popen[bytes], seconds: float) -> None:
    for _ in range(int(seconds / 0.5)):  # polls, each 0.5 s apart
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {seconds}s")


def spawn(home: AirflowHome, args: list[str], database: str,
          log: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``airflow <args>`` in its own session (so its children stop with it), output to log."""
    with open(log, "wb") as out:
        return subprocess.Popen([str(home.venv / "bin" / "airflow"), *args],
                                env={**home.env(database), **(extra_env or {})},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def start_webserver(home: AirflowHome, database: str, port: int) -> subprocess.Popen[bytes]:
    proc = spawn(home, ["webserver", "--port", str(port), "--hostname", "127.0.0.1",
                        "--pid", str(home.path / f"webserver-{port}.pid")],
                 database, home.path / f"webserver-{port}.log")
    wait_for(f"http://127.0.0.1:{port}/api/experimental/test", proc, 180)
    return proc


def start_api_server(home: AirflowHome, database: str, port: int,
                     extra_env: dict[str, str] | None = None,
                     workers: int = 1) -> subprocess.Popen[bytes]:
    """Airflow 3's ``airflow api-server`` on 127.0.0.1 (with the plugin pip-installed
    beside it, so it also answers ``/api/experimental``)."""
    log = home.path / f"api-server-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(home.venv / "bin" / "airflow"), "api-server", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers)],
            env={**home.env(database), **(extra_env or {})}, cwd=home.path,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(f"http://127.0.0.1:{port}/api/v2/monitor/health", proc, 180)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process and its children (the webserver's gunicorn workers)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

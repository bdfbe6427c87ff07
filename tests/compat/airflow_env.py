"""A real Apache Airflow 2.10.5 beside the plugin: its home, database and webserver.

The Airflow side runs from its own virtualenv (``AIRFLOW_VENV``, default /opt/af2, made
by ``install_airflow.sh``); the plugin runs in the test's own environment.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DAGS = Path(__file__).parent / "dags"
VENV = Path(os.environ.get("AIRFLOW_VENV", "/opt/af2"))


@dataclass
class AirflowHome:
    """An AIRFLOW_HOME whose SQLite database Airflow migrated and filled from DAGS."""

    path: Path
    database: Path

    def env(self, database: Path | None = None) -> dict[str, str]:
        db = database or self.database
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "API_PLUGIN"))},
            "AIRFLOW_HOME": str(self.path),
            "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}",
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

    def airflow(self, *args: str, database: Path | None = None, timeout: float = 300) -> str:
        done = subprocess.run([str(VENV / "bin" / "airflow"), *args], env=self.env(database),
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def copy_database(self, name: str) -> Path:
        target = self.path / name
        shutil.copyfile(self.database, target)
        return target


def make_home(path: Path) -> AirflowHome:
    """Migrate a fresh database and serialize the compat DAGs into it."""
    if not (VENV / "bin" / "airflow").exists():
        raise RuntimeError(f"no Airflow in {VENV}: run tests/compat/install_airflow.sh first")
    path.mkdir(parents=True, exist_ok=True)
    home = AirflowHome(path, path / "airflow.db")
    home.airflow("db", "migrate")
    home.airflow("dags", "reserialize")
    return home


def wait_for(url: str, proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {seconds}s")


def spawn(home: AirflowHome, args: list[str], database: Path,
          log: Path) -> subprocess.Popen[bytes]:
    """``airflow <args>`` in its own session (so its children stop with it), output to log."""
    with open(log, "wb") as out:
        return subprocess.Popen([str(VENV / "bin" / "airflow"), *args], env=home.env(database),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def start_webserver(home: AirflowHome, database: Path, port: int) -> subprocess.Popen[bytes]:
    proc = spawn(home, ["webserver", "--port", str(port), "--hostname", "127.0.0.1",
                        "--pid", str(home.path / f"webserver-{port}.pid")],
                 database, home.path / f"webserver-{port}.log")
    wait_for(f"http://127.0.0.1:{port}/api/experimental/test", proc, 180)
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

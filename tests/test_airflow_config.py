"""Airflow 3's configuration as api_plugin settings, without Airflow installed: the
airflow.cfg mapping, its precedence under api_plugin's own settings, the hosted rules
(airflow_jwt by default, the open backend refused), the per-process app, and that no
module of the package imports Airflow."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from api_plugin.cli.main import main
from api_plugin.serving.per_process import PerProcessApp
from api_plugin.settings.airflow import (
    AirflowConf,
    AirflowFile,
    MissingAirflowConfig,
    OpenApiRefused,
    airflow_config_path,
    hosted_config,
    settings_from_airflow,
)
from api_plugin.settings.config import Config

AIRFLOW_CFG = """\
[core]
dags_folder = /opt/airflow/dags
auth_manager = airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
simple_auth_manager_users = admin:admin,viewer:viewer
simple_auth_manager_passwords_file = /opt/airflow/passwords.json
fernet_key =

[database]
sql_alchemy_conn = postgresql+psycopg2://airflow:p%%ss@db/airflow

[logging]
log_format = [%%(asctime)s] %%(message)s

[api]
base_url = https://airflow.example.com/af
port = 8080
workers = 4

[api_auth]
jwt_secret = 0123secret
jwt_leeway = 10
jwt_audience = apache-airflow

[api_plugin]
prefix = /api/experimental
max_body_bytes = 2048
workers = 3
kerberos_keytab = /etc/k.keytab
"""


@pytest.fixture
def airflow_cfg(tmp_path: Path) -> Path:
    path = tmp_path / "airflow_home" / "airflow.cfg"
    path.parent.mkdir()
    path.write_text(AIRFLOW_CFG)
    return path


def test_airflow_cfg_mapped(airflow_cfg: Path) -> None:
    settings = settings_from_airflow(AirflowFile(airflow_cfg, environ={}))
    assert settings["database"] == {
        "sql_alchemy_conn": "postgresql+psycopg2://airflow:p%ss@db/airflow"}
    assert settings["api"] == {"base_url": "https://airflow.example.com/af",
                               "auth_backend": "airflow_jwt", "prefix": "/api/experimental",
                               "max_body_bytes": "2048"}
    # The secret keeps its text (Airflow's getsection would make "0123..." a number).
    assert settings["api_auth"] == {"jwt_secret": "0123secret", "jwt_leeway": "10",
                                    "jwt_audience": "apache-airflow"}
    assert settings["core"] == {
        "auth_manager": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager."
                        "SimpleAuthManager",
        "simple_auth_manager_users": "admin:admin,viewer:viewer",
        "simple_auth_manager_passwords_file": "/opt/airflow/passwords.json"}
    assert settings["webserver"] == {"workers": "3"}  # not Airflow's own [api] workers
    assert settings["kerberos"] == {"keytab": "/etc/k.keytab"}
    assert "logging" not in settings


def test_airflow_defaults_and_variables(tmp_path: Path) -> None:
    """Unset keys take Airflow's defaults in AIRFLOW_HOME; AIRFLOW__ variables win over
    the file, the plugin's section included."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "airflow.cfg").write_text("[core]\nsimple_auth_manager_users = admin:admin\n")
    env = {"AIRFLOW_HOME": str(home), "AIRFLOW__API_PLUGIN__AUTH_BACKENDS": "password",
           "AIRFLOW__API_AUTH__JWT_SECRET": "from-env",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD": "cat /secret"}
    assert airflow_config_path(env) == home / "airflow.cfg"
    assert airflow_config_path({**env, "AIRFLOW_CONFIG": "/x/a.cfg"}) == Path("/x/a.cfg")
    settings = settings_from_airflow(AirflowFile(home / "airflow.cfg", environ=env))
    assert settings["database"] == {"sql_alchemy_conn": f"sqlite:///{home / 'airflow.db'}"}
    assert settings["core"]["simple_auth_manager_passwords_file"] == str(
        home / "simple_auth_manager_passwords.json.generated")
    assert settings["api"]["auth_backends"] == "password"
    assert settings["api_auth"] == {"jwt_secret": "from-env"}
    with pytest.raises(MissingAirflowConfig, match="no Airflow configuration file"):
        AirflowFile(home / "nope.cfg", environ={})


def test_standalone_precedence(airflow_cfg: Path, tmp_path: Path) -> None:
    """api_plugin's own INI and variables stay above what the Airflow file says."""
    ini = tmp_path / "api_plugin.cfg"
    ini.write_text("[api]\nmax_body_bytes = 99\n")
    config = Config.load(ini, environ={}, airflow_config=airflow_cfg)
    assert config.sql_alchemy_conn == "postgresql+psycopg2://airflow:p%ss@db/airflow"
    assert config.auth_backends == ["airflow_jwt"]
    assert config.max_body_bytes == 99
    assert config.get("api_auth", "jwt_secret") == "0123secret"
    assert config.get("webserver", "workers") == "3"
    env = {"API_PLUGIN__API__AUTH_BACKENDS": "airflow_jwt, password",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:///other.db"}
    config = Config.load(ini, environ=env, airflow_config=airflow_cfg)
    assert config.auth_backends == ["airflow_jwt", "password"]
    assert config.sql_alchemy_conn == "sqlite:///other.db"
    # Asked for by a setting rather than an argument; 'auto' is Airflow's own lookup.
    ini.write_text("[airflow]\nconfig = auto\n")
    auto = Config.load(ini, environ={"AIRFLOW_HOME": str(airflow_cfg.parent)})
    assert auto.get("api", "base_url") == "https://airflow.example.com/af"
    # Without it nothing of Airflow's file is read.
    ini.write_text("")
    assert Config.load(ini, environ={}).auth_backends == ["default"]


def test_cli_reports_a_missing_airflow_config(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", str(tmp_path / "none.cfg"), "--airflow-config",
                 str(tmp_path / "missing.cfg"), "db", "init"])
    assert code == 2
    assert "no Airflow configuration file at" in capsys.readouterr().err


class FakeConf:
    """What the plugin uses of ``airflow.configuration.conf``: ``getsection`` (types
    converted, as Airflow does) and ``get`` (text)."""

    def __init__(self, values: dict[str, dict[str, str]]) -> None:
        self.values = values

    def getsection(self, name: str) -> dict[str, Any] | None:
        section = self.values.get(name)
        return None if section is None else {k: _converted(v) for k, v in section.items()}

    def get(self, section: str, key: str, fallback: Any = None) -> Any:
        env = os.environ.get(f"AIRFLOW__{section.upper()}__{key.upper()}")
        return env if env is not None else self.values.get(section, {}).get(key, fallback)


def _converted(value: str) -> Any:
    try:
        return int(value)
    except ValueError:
        return value


def test_hosted_defaults_to_airflow_jwt(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = FakeConf({"database": {"sql_alchemy_conn": "sqlite:////af/airflow.db"},
                     "api_auth": {"jwt_secret": "0042", "jwt_leeway": "10"},
                     "core": {"simple_auth_manager_users": "admin:admin"}})
    monkeypatch.setenv("AIRFLOW__API_PLUGIN__PREFIX", "/api/exp")
    monkeypatch.setenv("AIRFLOW_HOME", "/af")
    config = hosted_config(AirflowConf(conf), environ=dict(os.environ))
    assert config.auth_backends == ["airflow_jwt"]
    assert config.prefix == "/api/exp"  # a section only in the environment
    assert config.sql_alchemy_conn == "sqlite:////af/airflow.db"
    assert config.get("api_auth", "jwt_secret") == "0042"
    assert config.get("core", "simple_auth_manager_passwords_file") == \
        "/af/simple_auth_manager_passwords.json.generated"
    # API_PLUGIN__ variables still win, as everywhere.
    env = {**os.environ, "API_PLUGIN__API__AUTH_BACKENDS": "password"}
    assert hosted_config(AirflowConf(conf), environ=env).auth_backends == ["password"]


@pytest.mark.parametrize("backends", ["default", "airflow_jwt, default",
                                      "airflow.api.auth.backend.default"])
def test_hosted_refuses_the_open_backend(backends: str) -> None:
    conf = FakeConf({"api_plugin": {"auth_backends": backends}})
    with pytest.raises(OpenApiRefused, match="allow_open_api = True"):
        hosted_config(AirflowConf(conf, environ={}), environ={})
    conf.values["api_plugin"]["allow_open_api"] = "True"
    allowed = hosted_config(AirflowConf(conf, environ={}), environ={})
    assert "default" in allowed.auth_backends[-1]


def test_per_process_app_builds_once_per_process() -> None:
    built: list[int] = []
    pid = [100]

    def factory() -> Any:
        built.append(pid[0])

        def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            start_response("200 OK", [])
            return [str(len(built)).encode()]

        return app

    per_process = PerProcessApp(factory, getpid=lambda: pid[0])
    assert built == []  # nothing at construction (the plugin's import)
    calls = [b"".join(per_process({}, lambda *a: None)) for _ in range(3)]
    assert calls == [b"1", b"1", b"1"] and built == [100]
    pid[0] = 101  # a forked worker
    assert b"".join(per_process({}, lambda *a: None)) == b"2"
    assert built == [100, 101]


def test_per_process_app_answers_503_until_it_can_start(
        caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[int] = []

    def factory() -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("no database at postgresql://u:secret@db/x")
        return lambda environ, start_response: start_response("200 OK", []) or [b"up"]

    per_process = PerProcessApp(factory)
    statuses: list[str] = []
    body = b"".join(per_process({}, lambda status, headers: statuses.append(status)))
    assert statuses == ["503 SERVICE UNAVAILABLE"]
    # The one error renderer's compact JSON (errors.error_response), as every error body.
    assert body == b'{"error":"The API is not available: see the server\'s log"}'
    assert "secret" in caplog.text  # the cause is logged, never sent
    assert b"".join(per_process({}, lambda *a: None)) == b"up" and len(attempts) == 2


def test_package_imports_without_airflow(tmp_path: Path) -> None:
    """Every module but the plugin imports with ``airflow`` unimportable, and none of
    them loads it; the plugin module alone needs Airflow."""
    script = textwrap.dedent("""
        import importlib, pkgutil, sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "airflow":
                    raise ImportError(f"blocked: {name}")
                return None

        sys.meta_path.insert(0, Block())
        import api_plugin
        names = [m.name for m in pkgutil.walk_packages(api_plugin.__path__, "api_plugin.")]
        for name in names:
            if name.endswith(".__main__"):
                continue  # runs the command when imported
            if name not in ("api_plugin.serving.airflow_plugin", "api_plugin.auth.kerberos"):
                importlib.import_module(name)
        assert not [m for m in sys.modules if m.split(".")[0] == "airflow"]
        try:
            importlib.import_module("api_plugin.serving.airflow_plugin")
        except ImportError as exc:
            print("plugin needs airflow:", exc)
        print(len(names), "modules")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "plugin needs airflow: blocked: airflow" in done.stdout

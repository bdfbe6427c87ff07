"""Airflow 3's own configuration as api_plugin settings: what the plugin reads when it runs
inside Airflow's api-server, or standalone beside it (``api-plugin --airflow-config``).

Airflow's settings come from a *source*: either Airflow's live ``airflow.configuration.conf``
(inside Airflow's processes; see ``api_plugin.serving.airflow_plugin``) or an ``airflow.cfg`` file
read here without Airflow installed, with ``AIRFLOW__SECTION__KEY`` variables applied as
Airflow applies them. The mapping keeps Airflow's names where both mean the same thing:

- ``[database] sql_alchemy_conn`` is the database (Airflow's default, the SQLite file in
  ``AIRFLOW_HOME``, when unset);
- ``[api] base_url`` is copied (Airflow's UI root, for run URLs);
- ``[api_auth]`` is copied whole (the ``airflow_jwt`` backend validates Airflow's tokens
  with it), and the auth-manager keys of ``[core]`` (``auth_manager``,
  ``simple_auth_manager_*``) too, for the ``password`` backend on the simple auth manager;
- the plugin's own section ``[api_plugin]`` (``AIRFLOW__API_PLUGIN__KEY`` overrides, as for
  any Airflow section) holds api_plugin's ``[api]`` keys — ``prefix``, ``auth_backends``,
  ``allow_open_api``, ``max_body_bytes``... — plus ``bind``/``workers``/``access_logfile``/
  ``worker_timeout`` for ``api-plugin serve`` and ``kerberos_keytab``/``kerberos_service``/
  ``kerberos_hostname``.

Beside Airflow 3 the default auth backend is ``airflow_jwt`` (Airflow's own bearer tokens).
Inside the api-server the open ``default`` backend is refused unless ``[api_plugin]
allow_open_api = True``: Airflow does not authenticate plugin apps and its api-server
listens on every interface, so the plugin's own auth stack is the only protection there.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from api_plugin.settings.config import DEFAULTS, Config

#: The plugin's own section in airflow.cfg.
SECTION = "api_plugin"
#: The backend used beside Airflow 3 when none is configured.
AIRFLOW_DEFAULT_BACKEND = "airflow_jwt"

#: Keys of ``[api_plugin]`` that are not api_plugin ``[api]`` keys: where they go.
_ELSEWHERE = {
    "bind": ("webserver", "bind"),
    "workers": ("webserver", "workers"),
    "access_logfile": ("webserver", "access_logfile"),
    "worker_timeout": ("webserver", "worker_timeout"),
    "kerberos_keytab": ("kerberos", "keytab"),
    "kerberos_service": ("kerberos", "service"),
    "kerberos_hostname": ("kerberos", "hostname"),
}
#: Airflow's ``[core]`` keys the auth backends need (simple auth manager users).
_CORE_KEYS = ("auth_manager", "simple_auth_manager_users", "simple_auth_manager_all_admins",
              "simple_auth_manager_passwords_file")
_OPEN_NAMES = ("default", "airflow.api.auth.backend.default")
#: Airflow's own defaults, written here once: its SQLite database and the simple auth
#: manager's generated passwords file, both in ``AIRFLOW_HOME``.
AIRFLOW_DB_FILE = "airflow.db"
PASSWORDS_FILE_NAME = "simple_auth_manager_passwords.json.generated"


class MissingAirflowConfig(ValueError):
    """The Airflow configuration file asked for does not exist."""


class OpenApiRefused(ValueError):
    """The open ``default`` backend was configured inside Airflow's api-server."""


class AirflowSettings(Protocol):
    """Where Airflow's settings are read: a section as ``{key: text}`` ({} when absent)."""

    def section(self, name: str) -> dict[str, str]: ...


def airflow_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$AIRFLOW_HOME``, else ``~/airflow``: where Airflow keeps its config and files."""
    env = os.environ if environ is None else environ
    return Path(env.get("AIRFLOW_HOME") or "~/airflow").expanduser()


def airflow_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The airflow.cfg Airflow itself would read: ``$AIRFLOW_CONFIG``, else
    ``$AIRFLOW_HOME/airflow.cfg``."""
    env = os.environ if environ is None else environ
    if env.get("AIRFLOW_CONFIG"):
        return Path(env["AIRFLOW_CONFIG"]).expanduser()
    return airflow_home(env) / "airflow.cfg"


def default_passwords_file(environ: Mapping[str, str] | None = None) -> Path:
    """``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``, where Airflow 3's
    api-server writes the simple auth manager's passwords by default."""
    return airflow_home(environ) / PASSWORDS_FILE_NAME


class AirflowFile:
    """An airflow.cfg read without Airflow: the file, then ``AIRFLOW__SECTION__KEY``
    variables (later wins), ``%%`` read as Airflow's parser reads it. Only the defaults
    the mapping needs are filled in (the database and the passwords file, both in
    ``AIRFLOW_HOME``); commands (``*_cmd``) and secrets backends are Airflow's alone."""

    def __init__(self, path: str | os.PathLike[str],
                 environ: Mapping[str, str] | None = None) -> None:
        self.path = Path(path).expanduser()
        self.environ = os.environ if environ is None else environ
        if not self.path.is_file():
            raise MissingAirflowConfig(f"no Airflow configuration file at {self.path}")
        parser = configparser.ConfigParser(interpolation=configparser.BasicInterpolation())
        parser.read(self.path, encoding="utf-8")
        self._sections: dict[str, dict[str, str]] = {}
        for name in parser.sections():
            values = self._sections.setdefault(name.lower(), {})
            for key in parser.options(name):
                try:
                    values[key.lower()] = parser.get(name, key)
                except configparser.InterpolationError:
                    values[key.lower()] = parser.get(name, key, raw=True)
        for env_name, value in self.environ.items():
            if env_name.startswith("AIRFLOW__") and env_name.count("__") >= 2:
                section, _, key = env_name[len("AIRFLOW__"):].partition("__")
                if key:  # ``*_CMD`` names are kept as such: never run here
                    self._sections.setdefault(section.lower(), {})[key.lower()] = value
        home = Path(self.environ.get("AIRFLOW_HOME") or self.path.parent).expanduser()
        self._defaults = {
            "database": {"sql_alchemy_conn": f"sqlite:///{home / AIRFLOW_DB_FILE}"},
            "core": {"simple_auth_manager_passwords_file": str(home / PASSWORDS_FILE_NAME)},
        }

    def section(self, name: str) -> dict[str, str]:
        return {**self._defaults.get(name, {}), **self._sections.get(name, {})}


class AirflowConf:
    """Airflow's live configuration (``airflow.configuration.conf``), inside Airflow.

    Keys are listed from Airflow's section (file, defaults, ``AIRFLOW__`` variables) and
    each value read with ``conf.get``, so ``*_cmd``/``*_secret`` settings resolve as in
    Airflow and values keep their text (``getsection`` turns ``"0123"`` into 123).
    """

    def __init__(self, conf: Any, environ: Mapping[str, str] | None = None) -> None:
        self.conf = conf
        self.environ = os.environ if environ is None else environ

    def section(self, name: str) -> dict[str, str]:
        keys = set((self.conf.getsection(name) or {}).keys())
        prefix = f"AIRFLOW__{name.upper()}__"
        for env_name in self.environ:
            if env_name.startswith(prefix):
                key = env_name[len(prefix):].lower()
                # ``jwt_secret`` or ``<key>_secret`` (a secrets-backend lookup): try both.
                keys.update({key, key.removesuffix("_cmd").removesuffix("_secret")})
        values = {}
        for key in sorted(keys):
            value = self.conf.get(name, key, fallback=None)
            if value is not None:
                values[key] = str(value)
        if name == "core" and "simple_auth_manager_passwords_file" not in values:
            values["simple_auth_manager_passwords_file"] = str(
                default_passwords_file(self.environ))
        return values


def settings_from_airflow(source: AirflowSettings) -> dict[str, dict[str, str]]:
    """api_plugin's sections from Airflow's settings (see the module's docstring)."""
    settings: dict[str, dict[str, str]] = {"api": {}, "database": {}, "core": {},
                                           "api_auth": {}, "webserver": {}, "kerberos": {}}
    url = source.section("database").get("sql_alchemy_conn")
    if url:
        settings["database"]["sql_alchemy_conn"] = url
    base_url = source.section("api").get("base_url")
    if base_url:
        settings["api"]["base_url"] = base_url
    settings["api_auth"].update(source.section("api_auth"))
    core = source.section("core")
    settings["core"].update({k: core[k] for k in _CORE_KEYS if k in core})
    # The singular key: an explicit ``auth_backends`` anywhere (INI, variables) wins.
    settings["api"]["auth_backend"] = AIRFLOW_DEFAULT_BACKEND
    for key, value in source.section(SECTION).items():
        section, name = _ELSEWHERE.get(key, ("api", key))
        settings[section][name] = value
    return {name: values for name, values in settings.items() if values}


def hosted_config(source: AirflowSettings, environ: Mapping[str, str] | None = None,
                  path: Path | None = None) -> Config:
    """The configuration inside Airflow's api-server: api_plugin's defaults, Airflow's
    settings mapped, then ``API_PLUGIN__SECTION__KEY`` variables. Refuses the open
    backend unless ``allow_open_api`` is set (``OpenApiRefused``)."""
    env = os.environ if environ is None else environ
    merged = {name: dict(values) for name, values in DEFAULTS.items()}
    for name, values in settings_from_airflow(source).items():
        merged.setdefault(name, {}).update(values)
    for env_name, value in env.items():
        if env_name.startswith("API_PLUGIN__") and env_name.count("__") >= 2:
            section, _, key = env_name[len("API_PLUGIN__"):].partition("__")
            merged.setdefault(section.lower(), {})[key.lower()] = value
    config = Config(values=merged, path=path or airflow_config_path(env))
    check_hosted_auth(config)
    return config


def check_hosted_auth(config: Config) -> None:
    """Inside the api-server, ``default`` only with ``allow_open_api = True``."""
    if any(name in _OPEN_NAMES for name in config.auth_backends) and not config.allow_open_api:
        raise OpenApiRefused(
            "api_plugin will not serve its API without authentication inside Airflow's "
            "api-server: Airflow does not authenticate plugin apps and listens on every "
            "interface. Use [api_plugin] auth_backends = airflow_jwt (the default), password "
            "or kerberos, or set [api_plugin] allow_open_api = True "
            "(AIRFLOW__API_PLUGIN__ALLOW_OPEN_API=True) if that is really intended.")

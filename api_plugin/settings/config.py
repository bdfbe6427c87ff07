"""One typed configuration, read once: an airflow.cfg-style INI file plus the environment.

Precedence, lowest first: built-in defaults, the INI file (``API_PLUGIN_CONFIG``, default
``~/.api_plugin/api_plugin.cfg``), ``AIRFLOW__SECTION__KEY`` variables (so the plugin can
share an Airflow deployment's settings), ``API_PLUGIN__SECTION__KEY`` variables, and
explicit overrides given in code (``section__key=value``).

Beside Airflow 3, an Airflow configuration file can be asked for (``airflow_config=`` in
code, ``api-plugin --airflow-config``, or ``[airflow] config`` in the INI file or
``API_PLUGIN__AIRFLOW__CONFIG``; ``auto`` means the file Airflow itself reads). Its
settings, mapped by ``api_plugin.settings.airflow``, sit just above the built-in defaults:
everything listed above still wins over them.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off", ""}
_ENV_PREFIXES = ("AIRFLOW__", "API_PLUGIN__")  # later wins

#: Every default of api_plugin's own settings, written here once (flask's
#: ``default_config``): the typed accessors of ``Config`` fall back to these, other
#: modules take their defaults from ``DEFAULT_CONFIG``, and the configuration reference
#: is generated from this table (``docs/_ext/config_keys.py`` adds the words).
DEFAULTS: dict[str, dict[str, str]] = {
    "api": {
        "prefix": "/api/experimental",
        "auth_backend": "default",
        "allow_open_api": "False",
        "max_body_bytes": str(1024 * 1024),
        "password_cache_seconds": "60",
        "auth_failures_per_minute": "20",
        "auth_account_failures_per_minute": "60",
        "auth_host_failures_per_minute": "120",
        "basic_realm": "api_plugin",
        "auth_throttle_path": "",
    },
    "webserver": {"bind": "127.0.0.1:8080", "workers": "2", "worker_timeout": "60",
                  "access_logfile": "-", "request_read_timeout": "10", "keep_alive": "2"},
    "cli": {"api_client": "json_client", "endpoint_url": "http://127.0.0.1:8080",
            "kerberos_service": "airflow", "timeout": "30"},
    "kerberos": {},
    "database": {},
}


def default_config_path() -> Path:
    """Where the INI file is looked for when ``API_PLUGIN_CONFIG`` is not set."""
    return Path(os.environ.get("API_PLUGIN_CONFIG", "~/.api_plugin/api_plugin.cfg")).expanduser()


def parse_bool(value: str | bool | None) -> bool:
    """Read a configuration boolean the way airflow.cfg writes them."""
    if isinstance(value, bool):
        return value
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r}")


@dataclass(frozen=True)
class Config:
    """Merged settings, looked up by section and key (both case-insensitive)."""

    values: Mapping[str, Mapping[str, str]]
    path: Path = field(default_factory=default_config_path)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        airflow_config: str | os.PathLike[str] | None = None,
        **overrides: Any,
    ) -> Config:
        """Read the INI file and the environment, then apply ``section__key`` overrides;
        with an Airflow configuration (argument or ``[airflow] config``), its mapped
        settings go under all of those."""
        env = os.environ if environ is None else environ
        cfg_path = Path(path).expanduser() if path is not None else default_config_path()
        config = cls._merge(DEFAULTS, cfg_path, env, overrides)
        chosen = airflow_config if airflow_config is not None else config.get("airflow", "config")
        if not chosen:
            return config
        from api_plugin.settings.airflow import (
            AirflowFile,
            airflow_config_path,
            settings_from_airflow,
        )

        airflow_path = airflow_config_path(env) if str(chosen) == "auto" else chosen
        base = {s: dict(v) for s, v in DEFAULTS.items()}
        for section, values in settings_from_airflow(AirflowFile(airflow_path, env)).items():
            base.setdefault(section, {}).update(values)
        return cls._merge(base, cfg_path, env, overrides)

    @classmethod
    def _merge(cls, base: Mapping[str, Mapping[str, str]], cfg_path: Path,
               env: Mapping[str, str], overrides: Mapping[str, Any]) -> Config:
        merged: dict[str, dict[str, str]] = {s: dict(v) for s, v in base.items()}
        if cfg_path.is_file():
            parser = configparser.ConfigParser(interpolation=None)
            parser.read(cfg_path, encoding="utf-8")
            for section in parser.sections():
                merged.setdefault(section.lower(), {}).update(
                    {k.lower(): v for k, v in parser.items(section)}
                )
        for prefix in _ENV_PREFIXES:
            for name, value in env.items():
                if name.startswith(prefix) and name.count("__") >= 2:
                    section, _, key = name[len(prefix):].partition("__")
                    merged.setdefault(section.lower(), {})[key.lower()] = value
        for name, value in overrides.items():
            section, sep, key = name.partition("__")
            if not sep:
                raise ValueError(f"override {name!r} is not of the form section__key")
            merged.setdefault(section.lower(), {})[key.lower()] = _as_text(value)
        return cls(values=merged, path=cfg_path)

    def get(self, section: str, key: str, default: str | None = None) -> str | None:
        """The raw string value, or ``default``."""
        return self.values.get(section.lower(), {}).get(key.lower(), default)

    def setting(self, section: str, key: str) -> str:
        """The value of a key DEFAULTS lists; its default when unset or blank."""
        value = self.get(section, key)
        return value if value is not None and value.strip() else DEFAULTS[section][key]

    def with_overrides(self, **overrides: Any) -> Config:
        """A copy with ``section__key`` settings replaced."""
        merged = {s: dict(v) for s, v in self.values.items()}
        for name, value in overrides.items():
            section, _, key = name.partition("__")
            merged.setdefault(section.lower(), {})[key.lower()] = _as_text(value)
        return Config(values=merged, path=self.path)

    # Typed views of the settings the package uses.

    @property
    def home(self) -> Path:
        """The folder holding the config file and the embedded database."""
        return self.path.parent

    @property
    def sql_alchemy_conn(self) -> str:
        """Database URL: ``[database]``, then ``[core]``, else the embedded SQLite file."""
        url = self.get("database", "sql_alchemy_conn") or self.get("core", "sql_alchemy_conn")
        return url or self.embedded_url

    @property
    def embedded_url(self) -> str:
        """The embedded SQLite database next to the config file."""
        return f"sqlite:///{self.home / 'api_plugin.db'}"

    @property
    def prefix(self) -> str:
        """``[api] prefix``, with a leading and no trailing slash ("" for the root)."""
        prefix = (self.get("api", "prefix") or "").rstrip("/")
        return prefix if not prefix or prefix.startswith("/") else "/" + prefix

    @property
    def auth_backends(self) -> list[str]:
        """Backend names in order: ``auth_backends`` (a comma list) wins over ``auth_backend``."""
        raw = self.get("api", "auth_backends") or self.setting("api", "auth_backend")
        return [name.strip() for name in raw.split(",") if name.strip()]

    @property
    def allow_open_api(self) -> bool:
        return parse_bool(self.setting("api", "allow_open_api"))

    @property
    def max_body_bytes(self) -> int:
        return int(self.setting("api", "max_body_bytes"))

    @property
    def basic_realm(self) -> str:
        return self.setting("api", "basic_realm")

    @property
    def password_cache_seconds(self) -> float:
        return float(self.setting("api", "password_cache_seconds"))

    @property
    def auth_failures_per_minute(self) -> int:
        return int(self.setting("api", "auth_failures_per_minute"))

    @property
    def auth_account_failures_per_minute(self) -> int:
        return int(self.setting("api", "auth_account_failures_per_minute"))

    @property
    def auth_host_failures_per_minute(self) -> int:
        return int(self.setting("api", "auth_host_failures_per_minute"))

    @property
    def bind(self) -> str:
        """``[webserver] bind``: where ``api-plugin serve`` listens."""
        return self.setting("webserver", "bind")

    @property
    def workers(self) -> int:
        return int(self.setting("webserver", "workers"))

    @property
    def worker_timeout(self) -> int:
        return int(self.setting("webserver", "worker_timeout"))

    @property
    def request_read_timeout(self) -> float:
        """``[webserver] request_read_timeout``: seconds a client has to send a request."""
        return float(self.setting("webserver", "request_read_timeout"))

    @property
    def keep_alive(self) -> int:
        """``[webserver] keep_alive``: whole seconds an idle connection waits for its
        next request (0: every connection closes after one answer)."""
        return max(0, int(self.setting("webserver", "keep_alive")))

    @property
    def access_logfile(self) -> str:
        return self.setting("webserver", "access_logfile")

    @property
    def api_client(self) -> str:
        """``[cli] api_client``: which client the command line uses."""
        return self.setting("cli", "api_client").strip()

    @property
    def endpoint_url(self) -> str:
        return self.setting("cli", "endpoint_url")

    @property
    def client_kerberos_service(self) -> str:
        """``[cli] kerberos_service``: the service json_client asks a ticket for."""
        return self.setting("cli", "kerberos_service")

    @property
    def client_timeout(self) -> float:
        """``[cli] timeout``: seconds json_client waits for an answer."""
        return float(self.setting("cli", "timeout"))

    @property
    def allowed_run_id_pattern(self) -> str | None:
        """``[scheduler] allowed_run_id_pattern``, Airflow's own setting (None: its default)."""
        from api_plugin.run_ids import validate_pattern

        pattern = (self.get("scheduler", "allowed_run_id_pattern") or "").strip()
        return validate_pattern(pattern) if pattern else None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


#: The configuration with nothing set: every default, typed (``DEFAULT_CONFIG.workers``).
DEFAULT_CONFIG = Config(values=DEFAULTS, path=Path("api_plugin.cfg"))
#: Where the API answers when nothing else is said.
DEFAULT_PREFIX = DEFAULTS["api"]["prefix"]

__all__ = ["DEFAULTS", "DEFAULT_CONFIG", "DEFAULT_PREFIX", "Config", "default_config_path",
           "parse_bool"]

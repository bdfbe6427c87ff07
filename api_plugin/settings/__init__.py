"""Configuration: the defaults table, the INI file and environment, and Airflow's own
configuration when the plugin runs inside Airflow."""

from api_plugin.settings.airflow import hosted_config
from api_plugin.settings.config import DEFAULT_CONFIG, DEFAULT_PREFIX, DEFAULTS, Config

__all__ = ["DEFAULTS", "DEFAULT_CONFIG", "DEFAULT_PREFIX", "Config", "hosted_config"]

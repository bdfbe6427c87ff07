"""Configuration: the defaults table, the INI file and environment, and Airflow's own
configuration when the plugin runs inside Airflow."""

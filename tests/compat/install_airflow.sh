#!/usr/bin/env bash
# Install Apache Airflow 2.10.5 into its own virtualenv (default /opt/af2) for the
# compatibility suite. Airflow's constraint files are not reachable here; the
# unconstrained resolve installs (about 45 s) and works for what the suite uses.
set -euo pipefail
venv=${1:-/opt/af2}
if [ -x "$venv/bin/airflow" ] && "$venv/bin/python" -c "import airflow, sys; sys.exit(airflow.__version__ != '2.10.5')"; then
  exit 0
fi
python3 -m venv "$venv" || python3 -m virtualenv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "apache-airflow==2.10.5"
"$venv/bin/airflow" version

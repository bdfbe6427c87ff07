#!/usr/bin/env bash
# Install a reference Apache Airflow into its own virtualenv for the compatibility suite.
#   install_airflow.sh 2.10.5 VENV   - Airflow 2.10.5 on this Python
#   install_airflow.sh 1.10.15 VENV  - Airflow 1.10.15 on Python 3.8 (from pyenv)
#   install_airflow.sh 3.3.2 VENV    - Airflow 3.3.2 on Python 3.11, plus api_plugin from
#                                      this checkout (pip-installed, as a user would, so
#                                      `airflow api-server` finds its airflow.plugins entry
#                                      point); reinstalled on every call so it is current
# Airflow's constraint files are not reachable here. 2.10.5 resolves and works without
# them (about 45 s); 1.10.15 needs the upper bounds below, which its constraints file
# used to supply, or pip picks releases it cannot import (about 60 s).
set -euo pipefail
version=$1
venv=$2
# 2.x also gets psycopg2 so it can migrate and serve a PostgreSQL database; 3.x gets
# psycopg (3), the driver SQLAlchemy 2.1 picks for a postgresql:// URL, and asyncpg for
# the async engine Airflow 3 makes beside it.
check="import airflow, sys; sys.exit(airflow.__version__ != '$version')"
case "$version" in
  2.*) check="import psycopg2; $check" ;;
  3.*) check="import psycopg, asyncpg; $check" ;;
esac
checkout=$(cd "$(dirname "$0")/../.." && pwd)
install_plugin() {
  # Not editable: a real install of the checkout as it is now (Airflow reads the
  # airflow.plugins entry point from the installed metadata).
  "$venv/bin/pip" install -q --no-deps --force-reinstall "$checkout"
}
if [ -x "$venv/bin/airflow" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
  case "$version" in 3.*) install_plugin ;; esac
  exit 0
fi
rm -rf "$venv"
case "$version" in
  2.*)
    python3 -m venv "$venv" || python3 -m virtualenv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q "apache-airflow==$version" psycopg2-binary
    ;;
  3.*)
    py311=${PYTHON311:-$(command -v python3.11 || command -v python3)}
    "$py311" -c 'import sys; assert sys.version_info[:2] == (3, 11)'
    "$py311" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    # api_plugin's own dependencies resolve beside Airflow's (werkzeug, PasteDeploy,
    # bcrypt, gunicorn are added; SQLAlchemy 2.1, PyYAML, requests are Airflow's).
    "$venv/bin/pip" install -q "apache-airflow==$version" "psycopg[binary]" asyncpg "$checkout"
    install_plugin
    ;;
  1.10.*)
    py38=""
    # pyenv's shims exist even where the version is not selected: try each candidate.
    for candidate in "${PYTHON38:-}" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.8*/bin/python3.8 \
        "$(command -v python3.8 || true)"; do
      if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 8)' \
          2>/dev/null; then
        py38=$candidate
        break
      fi
    done
    if [ -z "$py38" ]; then
      echo "Airflow $version needs Python 3.8 (pyenv install 3.8, or set PYTHON38)" >&2
      exit 1
    fi
    "$py38" -m venv "$venv"
    "$venv/bin/pip" install -q "pip<24"
    "$venv/bin/pip" install -q "apache-airflow==$version" \
      "SQLAlchemy<1.4" "Flask-SQLAlchemy<2.5" "werkzeug<1.0" "markupsafe<2.1" \
      "itsdangerous<2.0" "jinja2<3.0" "wtforms<3.0" "marshmallow<3" \
      "marshmallow-sqlalchemy<0.24" "email-validator<2" "attrs<21" "cattrs<1.1" \
      "importlib-metadata<5" "tenacity<6" "pendulum<2" "flask-login<0.5" \
      "flask-appbuilder<2.4" "sqlalchemy-jsonfield<1" "python-dateutil<2.9"
    ;;
  *) echo "unknown Airflow version $version" >&2; exit 2 ;;
esac
"$venv/bin/airflow" version

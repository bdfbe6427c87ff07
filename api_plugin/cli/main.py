"""The ``api-plugin`` command: serve the API, manage its database, and call the API.

Exit codes scripts can rely on: 0 success, 1 the API answered with an error (message on
stderr, one line), 2 bad usage or configuration, 3 the API or database is unreachable.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from api_plugin import __version__
from api_plugin.settings.config import DEFAULT_CONFIG, Config

log = logging.getLogger(__name__)

EXIT_OK, EXIT_API_ERROR, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


class CliError(Exception):
    """A failure to report on stderr with an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def example_dags_dir() -> Path:
    """The example DAGs shipped inside the package."""
    return Path(str(resources.files("api_plugin") / "example_dags"))


def open_store(config: Config, *, create: bool = False) -> Any:
    from api_plugin.store import Store, UninitializedDatabase

    try:
        return Store.open(config.sql_alchemy_conn, create=create)
    except UninitializedDatabase as exc:
        raise CliError(str(exc)) from None


def cmd_db_init(args: argparse.Namespace, config: Config) -> int:
    store = open_store(config, create=True)
    print(f"Database ready ({store.flavor}) at {store.url}")
    return EXIT_OK


def cmd_dags_load(args: argparse.Namespace, config: Config) -> int:
    from api_plugin.cli.dagfiles import DagFileError, load_dags

    store = open_store(config, create=config.sql_alchemy_conn == config.embedded_url)
    try:
        loaded = load_dags(store, args.path, paused=args.paused)
    except DagFileError as exc:
        raise CliError(str(exc)) from None
    for dag_id in loaded:
        print(f"Loaded DAG {dag_id}")
    return EXIT_OK


def cmd_users_create(args: argparse.Namespace, config: Config) -> int:
    from api_plugin.auth.hashes import hash_password
    from api_plugin.store.users import create_user

    store = open_store(config, create=config.sql_alchemy_conn == config.embedded_url)
    create_user(store, args.username, hash_password(args.password, store.flavor.name),
                email=args.email, first_name=args.firstname or "", last_name=args.lastname or "")
    print(f"User {args.username} created")
    return EXIT_OK


def prepare_embedded(config: Config) -> None:
    """First start on the embedded default: create the database, load the examples."""
    if config.sql_alchemy_conn != config.embedded_url:
        return
    from sqlalchemy import func, select

    from api_plugin.cli.dagfiles import load_dags

    store = open_store(config, create=True)
    with store.read() as conn:
        count = conn.execute(select(func.count()).select_from(store.tables.dag)).scalar_one()
    if not count:
        for dag_id in load_dags(store, example_dags_dir()):
            log.info("loaded example DAG %s", dag_id)
    store.dispose()


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    from api_plugin.serving.serve import check_bind_is_safe, run_gunicorn

    bind = args.bind or config.bind
    workers = args.workers or config.workers
    check_bind_is_safe(config, bind)
    prepare_embedded(config)
    print(f"Serving the API on http://{bind}{config.prefix} with {workers} workers",
          flush=True)
    run_gunicorn(config, bind, workers)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="api-plugin", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"api-plugin {__version__}")
    parser.add_argument("--config", help="INI file (default: $API_PLUGIN_CONFIG or "
                        "~/.api_plugin/api_plugin.cfg)")
    parser.add_argument("--airflow-config", metavar="PATH|auto",
                        help="also read an Airflow 3 airflow.cfg (database, [api_auth], "
                        "[api_plugin]; 'auto': $AIRFLOW_CONFIG or $AIRFLOW_HOME/airflow.cfg) "
                        "under api_plugin's own settings (default: [airflow] config)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the API under gunicorn")
    serve.add_argument("--bind", help="host:port (default [webserver] bind, "
                       f"{DEFAULT_CONFIG.bind})")
    serve.add_argument("--workers", type=int, help="worker processes (default [webserver] "
                       f"workers, {DEFAULT_CONFIG.workers})")
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database commands").add_subparsers(dest="db", required=True)
    db.add_parser("init", help="create the airflow2 tables the API needs").set_defaults(
        func=cmd_db_init)

    dags = sub.add_parser("dags", help="DAG commands").add_subparsers(dest="dags", required=True)
    load = dags.add_parser("load", help="register declarative YAML/JSON DAGs")
    load.add_argument("path", help="a DAG file or a folder of them")
    load.add_argument("--paused", action="store_true", help="create new DAGs paused")
    load.set_defaults(func=cmd_dags_load)

    users = sub.add_parser("users", help="user commands").add_subparsers(dest="users",
                                                                         required=True)
    create = users.add_parser("create", help="add a user for password auth")
    create.add_argument("--username", "-u", required=True)
    create.add_argument("--password", "-p", required=True)
    create.add_argument("--email", "-e")
    create.add_argument("--firstname", "-f")
    create.add_argument("--lastname", "-l")
    create.add_argument("--role", "-r", help="accepted for Airflow compatibility; unused")
    create.set_defaults(func=cmd_users_create)

    from api_plugin.cli.client_commands import add_client_commands

    add_client_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``api-plugin`` console script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = Config.load(args.config, airflow_config=args.airflow_config)
        code: int = args.func(args, config)
        return code
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


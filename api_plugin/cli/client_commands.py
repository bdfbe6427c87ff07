"""The ``api-plugin`` subcommands that call the API through the configured client.

Tables for people by default, ``--json`` for scripts; errors go to stderr on one line
with exit code 1 (the API refused) or 3 (the API or database could not be reached).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from api_plugin.cli.main import EXIT_API_ERROR, EXIT_OK, EXIT_UNREACHABLE
from api_plugin.client import ApiClient, ClientConnectionError, get_client
from api_plugin.errors import ApiError
from api_plugin.settings.config import Config

Operation = Callable[[ApiClient, argparse.Namespace], Any]

#: Where the CLI finds a bearer token when ``--token`` is not given (keeps it out of ``ps``).
TOKEN_VARIABLE = "API_PLUGIN_TOKEN"


def render_table(value: Any) -> str:
    """A plain text table of a list of objects, or ``key  value`` lines of an object."""
    if isinstance(value, dict) and set(value) == {"items"}:
        value = value["items"]
    if isinstance(value, list):
        if not value:
            return "(none)"
        columns = list(dict.fromkeys(k for row in value for k in row))
        cells = [[str(row.get(c, "")) for c in columns] for row in value]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                  for r in cells]
        return "\n".join(lines)
    if isinstance(value, dict):
        width = max((len(str(k)) for k in value), default=0)
        return "\n".join(f"{str(k).ljust(width)}  {v}" for k, v in value.items())
    return str(value)


def _conf(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise ValueError(f"--conf is not JSON: {text}") from None


def _run(operation: Operation) -> Callable[[argparse.Namespace, Config], int]:
    def command(args: argparse.Namespace, config: Config) -> int:
        if args.endpoint_url:
            config = config.with_overrides(cli__endpoint_url=args.endpoint_url)
        token = args.token or os.environ.get(TOKEN_VARIABLE)
        if token:
            config = config.with_overrides(cli__api_token=token)
        client = get_client(config, args.api_client)
        try:
            result = operation(client, args)
        except ApiError as exc:
            print(f"error: {exc.message} (HTTP {exc.status})", file=sys.stderr)
            return EXIT_API_ERROR
        except ClientConnectionError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_UNREACHABLE
        finally:
            client.close()
        print(json.dumps(result, indent=2) if args.json else render_table(result))
        return EXIT_OK

    return command


COMMANDS: list[tuple[str, str, list[tuple[tuple[str, ...], dict[str, Any]]], Operation]] = [
    ("test", "check that the API answers", [], lambda c, a: c.test()),
    ("trigger", "trigger a DAG run", [
        (("dag_id",), {}),
        (("-r", "--run-id"), {}),
        (("-c", "--conf"), {"help": "JSON object"}),
        (("-e", "--exec-date"), {"help": "ISO 8601 execution date"}),
    ], lambda c, a: c.trigger_dag(a.dag_id, run_id=a.run_id, conf=_conf(a.conf),
                                  execution_date=a.exec_date)),
    ("runs", "list a DAG's runs", [
        (("dag_id",), {}),
        (("--state",), {}),
        (("--limit",), {"type": int}),
        (("--offset",), {"type": int}),
    ], lambda c, a: c.get_dag_runs(a.dag_id, a.state, a.limit, a.offset)),
    ("state", "a run's state", [(("dag_id",), {}), (("execution_date",), {})],
     lambda c, a: c.get_dag_run_state(a.dag_id, a.execution_date)),
    ("task", "a task's attributes", [(("dag_id",), {}), (("task_id",), {})],
     lambda c, a: c.get_task(a.dag_id, a.task_id)),
    ("task-instance", "a task instance", [
        (("dag_id",), {}), (("execution_date",), {}), (("task_id",), {})],
     lambda c, a: c.get_task_instance(a.dag_id, a.execution_date, a.task_id)),
    ("pause", "pause a DAG", [(("dag_id",), {})], lambda c, a: c.pause_dag(a.dag_id)),
    ("unpause", "unpause a DAG", [(("dag_id",), {})], lambda c, a: c.unpause_dag(a.dag_id)),
    ("paused", "is the DAG paused?", [(("dag_id",), {})], lambda c, a: c.get_paused(a.dag_id)),
    ("latest-runs", "every DAG's newest run", [], lambda c, a: c.latest_runs()),
    ("pools", "list pools", [], lambda c, a: c.get_pools()),
    ("pool", "one pool", [(("name",), {})], lambda c, a: c.get_pool(a.name)),
    ("pool-set", "create or update a pool", [
        (("name",), {}), (("slots",), {"type": int}), (("description",), {})],
     lambda c, a: c.create_pool(a.name, a.slots, a.description)),
    ("pool-delete", "delete a pool", [(("name",), {})], lambda c, a: c.delete_pool(a.name)),
]


def add_client_commands(sub: Any) -> None:
    """Register every client command on the ``api-plugin`` subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    common.add_argument("--api-client", help="json_client or local_client "
                        "(default [cli] api_client)")
    common.add_argument("--endpoint-url", help="server for json_client "
                        "(default [cli] endpoint_url)")
    common.add_argument("--token", help="bearer token for json_client, e.g. from Airflow 3's "
                        f"/auth/token (default ${TOKEN_VARIABLE}, then [cli] api_token)")
    for name, help_text, arguments, operation in COMMANDS:
        parser = sub.add_parser(name, help=help_text, parents=[common])
        for flags, options in arguments:
            parser.add_argument(*flags, **options)
        parser.set_defaults(func=_run(operation))

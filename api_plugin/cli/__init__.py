"""The ``api-plugin`` command line: serving, database set-up, DAG loading, and the
subcommands that call the API through a client."""

from api_plugin.cli.main import main

__all__ = ["main"]

"""Sphinx directives that write reference pages from the code, so they cannot drift.

- ``.. api-plugin-config::`` -- every setting of ``api_plugin.settings.config.DEFAULTS`` (and the
  keys read without a default), with its default, environment variable and the
  description kept in ``config_keys.py``. A key without a description is a build warning
  (an error under ``-W``).
- ``.. api-plugin-cli::`` -- every command of the ``api-plugin`` argparse parser, with its
  usage and options.
- ``.. api-plugin-routes::`` -- the URL map as a table, each row a link to the
  endpoint's entry in the REST API reference (a missing entry is a broken link: an error
  under ``-W``).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterator
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

log = logging.getLogger(__name__)

_PARAM = re.compile(r"<(?:[^:<>]+:)?(\w+)>")


def http_path(prefix: str, rule: str) -> str:
    """A werkzeug rule (``/dags/<dag_id>``) as sphinxcontrib-httpdomain writes it
    (``/api/experimental/dags/(dag_id)``)."""
    return prefix.rstrip("/") + _PARAM.sub(r"(\1)", rule)


def url_map_rules() -> list[tuple[str, str]]:
    """(method, rule) for every rule of the API's URL map, HEAD left out (it follows GET)."""
    from werkzeug.routing import Map

    from api_plugin.web import routes

    builder = getattr(routes, "build_url_map", None)
    url_map = builder() if callable(builder) else next(
        value for value in vars(routes).values() if isinstance(value, Map))
    found = {(method, rule.rule) for rule in url_map.iter_rules()
             for method in (rule.methods or ()) if method not in ("HEAD", "OPTIONS")}
    return sorted(found, key=lambda pair: (pair[1], pair[0]))


class _Generated(SphinxDirective):
    """A directive that writes reStructuredText and parses it in place."""

    def lines(self) -> Iterator[str]:
        """The reStructuredText to parse; each directive below writes its own."""
        return iter(())

    def run(self) -> list[nodes.Node]:
        return list(self.parse_text_to_nodes("\n".join(self.lines()),
                                             allow_section_headings=True))


class ConfigReference(_Generated):
    """Every setting, section by section."""

    def lines(self) -> Iterator[str]:
        from config_keys import DESCRIPTIONS, UNSET

        from api_plugin.settings.config import DEFAULTS

        sections = list(DEFAULTS) + [s for s in DESCRIPTIONS if s not in DEFAULTS]
        for section in sections:
            defaults = DEFAULTS.get(section, {})
            described = DESCRIPTIONS.get(section, {})
            keys = list(defaults) + [k for k in described if k not in defaults]
            if not keys:
                continue
            title = f"[{section}]"
            yield from (title, "-" * len(title), "")
            for key in keys:
                text = described.get(key)
                if text is None:
                    log.warning("config key [%s] %s has no description in "
                                "docs/_ext/config_keys.py", section, key,
                                location=self.get_location())
                    text = "(not described yet)"
                if key in defaults:
                    default = f"``{defaults[key]}``" if str(defaults[key]) else "empty"
                else:
                    default = UNSET.get(section, {}).get(key, "unset")
                env = f"API_PLUGIN__{section.upper()}__{key.upper()}"
                yield from (
                    f".. _config-{section}-{key}:",
                    "",
                    f"``{key}``",
                    f"   :Default: {default}",
                    f"   :Environment: ``{env}``",
                    "",
                    f"   {text}",
                    "",
                )


#: Words for arguments the parser leaves without help, by their ``dest``.
ARGUMENT_WORDS = {
    "dag_id": "the DAG's id",
    "task_id": "the task's id",
    "execution_date": "the run's execution date, ISO 8601",
    "run_id": "the new run's id (default ``manual__<execution date>``)",
    "name": "the pool's name",
    "slots": "the pool's size",
    "description": "the pool's description",
    "state": "only runs in this state",
    "limit": "at most this many runs",
    "offset": "skip this many runs first",
    "username": "the user's login name",
    "password": "the user's password",
    "email": "the user's e-mail address",
    "firstname": "the user's first name",
    "lastname": "the user's last name",
}

#: Options shared by this many subcommands or more are described once.
SHARED_BY = 4


class CliReference(_Generated):
    """The ``api-plugin`` command, every subcommand with its options."""

    def lines(self) -> Iterator[str]:
        from api_plugin.cli.main import build_parser

        saved = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "88"  # argparse wraps usage to the terminal: fix it
        try:
            parser = build_parser()
            shared = self._shared_options(parser)
            yield from self._parser(parser, "api-plugin", shared, top=True)
        finally:
            if saved is None:
                os.environ.pop("COLUMNS", None)
            else:
                os.environ["COLUMNS"] = saved

    @staticmethod
    def _subcommands(parser: argparse.ArgumentParser) -> Iterator[
            tuple[str, argparse.ArgumentParser, str]]:
        for sub in parser._actions:
            if isinstance(sub, argparse._SubParsersAction):
                helps = {choice.dest: choice.help or "" for choice in sub._choices_actions}
                for name, child in sub.choices.items():
                    yield name, child, helps.get(name, "")

    def _shared_options(self, parser: argparse.ArgumentParser) -> list[argparse.Action]:
        """Options that many subcommands repeat (``--json``...): described once."""
        seen: dict[tuple[tuple[str, ...], str], list[argparse.Action]] = {}
        for _name, child, _help in self._subcommands(parser):
            for action in child._actions:
                if action.option_strings and not isinstance(action, argparse._HelpAction):
                    seen.setdefault((tuple(action.option_strings), action.help or ""),
                                    []).append(action)
        return [actions[0] for actions in seen.values() if len(actions) >= SHARED_BY]

    def _parser(self, parser: argparse.ArgumentParser, name: str,
                shared: list[argparse.Action], top: bool = False,
                help_text: str = "") -> Iterator[str]:
        if not top:
            yield from (f"``{name}``", "-" * (len(name) + 4), "")
            if help_text:
                yield from (help_text[0].upper() + help_text[1:] + ".", "")
        yield from (".. code-block:: text", "")
        for line in parser.format_usage().strip().splitlines():
            yield "   " + line
        yield ""
        shared_flags = {tuple(a.option_strings) for a in shared}
        options = [a for a in parser._actions
                   if not isinstance(a, argparse._SubParsersAction | argparse._HelpAction)
                   and tuple(a.option_strings) not in shared_flags]
        if options:
            yield from (f".. program:: {name}", "")
            for action in options:
                yield from self._option(action)
        if top and shared:
            yield from ("The commands that call the API also take:", "",
                        ".. program:: api-plugin-client", "")
            for action in shared:
                yield from self._option(action)
        for sub_name, child, child_help in self._subcommands(parser):
            yield from self._parser(child, f"{name} {sub_name}", shared, help_text=child_help)

    @staticmethod
    def _option(action: argparse.Action) -> Iterator[str]:
        if action.option_strings:
            metavar = "" if action.nargs == 0 else f" <{(action.metavar or action.dest)}>"
            signature = ", ".join(f"{flag}{metavar}" for flag in action.option_strings)
        else:
            signature = str(action.metavar or action.dest)
        yield f".. option:: {signature}"
        yield ""
        words = (action.help or ARGUMENT_WORDS.get(action.dest, "")).replace(
            "%(prog)s", "api-plugin")
        if isinstance(action, argparse._VersionAction):
            words = "print the version and exit"
        notes = []
        if action.required and action.option_strings:
            notes.append("required")
        if action.type is int:
            notes.append("an integer")
        text = "; ".join(part for part in (words, *notes) if part)
        if text:
            yield f"   {text}."
            yield ""


class RouteTable(_Generated):
    """The URL map as a table of links into the REST API reference."""

    def lines(self) -> Iterator[str]:
        from api_plugin.settings.config import DEFAULTS

        prefix = DEFAULTS["api"]["prefix"]
        yield from (".. list-table::", "   :header-rows: 1", "   :widths: 10 90", "",
                    "   * - method", "     - path")
        for method, rule in url_map_rules():
            path = http_path(prefix, rule)
            yield f"   * - {method}"
            yield f"     - :http:{method.lower()}:`{path} <{path}>`"
        yield ""


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("api-plugin-config", ConfigReference)
    app.add_directive("api-plugin-cli", CliReference)
    app.add_directive("api-plugin-routes", RouteTable)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

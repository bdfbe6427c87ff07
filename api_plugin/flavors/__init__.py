"""Flavors: the Airflow major version that made a metadata database, and its differences.

``detect`` names the flavor of a database from its tables; ``FLAVORS`` holds one
``Flavor`` per supported version. See ``base.py`` for what a flavor describes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from api_plugin.flavors.airflow1 import Airflow1
from api_plugin.flavors.airflow2 import Airflow2
from api_plugin.flavors.airflow3 import Airflow3
from api_plugin.flavors.base import DagRecord, Flavor, TriggerInput

#: Every flavor by name, newest first: the order ``detect`` tries them in.
FLAVORS: dict[str, Flavor] = {
    flavor.name: flavor for flavor in (Airflow3(), Airflow2(), Airflow1())}


def detect(schema: Mapping[str, Collection[str]]) -> Flavor | None:
    """The flavor of a database with these tables (name -> columns), or None when it
    holds no Airflow tables. Columns are checked, not the alembic revision, so every
    release of a major version is recognised."""
    return next((flavor for flavor in FLAVORS.values() if flavor.recognises(schema)), None)


def flavor_named(name: str) -> Flavor:
    """The flavor called ``name`` (``airflow1``, ``airflow2``, ``airflow3``)."""
    try:
        return FLAVORS[name]
    except KeyError:
        raise ValueError(f"unknown flavor {name!r}; one of {', '.join(FLAVORS)}") from None


__all__ = ["FLAVORS", "DagRecord", "Flavor", "TriggerInput", "detect", "flavor_named"]

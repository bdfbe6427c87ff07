"""The API describing itself: the health answer and which Airflow it serves."""

from __future__ import annotations

from api_plugin import __version__
from api_plugin.store import Store
from api_plugin.web.rendering import Rendered

#: The health answer, its JSON encoded once.
_HEALTHY = Rendered({"status": "OK"})


def health() -> dict[str, str]:
    """``{"status": "OK"}``: the API answers (it reads nothing from the database)."""
    return _HEALTHY


def info(store: Store) -> dict[str, str]:
    """This package's version and the flavor of the database it serves."""
    return {"version": __version__, "flavor": store.flavor.name}

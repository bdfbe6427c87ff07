"""The app keeps the route matches it made, by path and method: an asked-again path
is answered as werkzeug's matcher would answer it, and only good matches of short
paths are kept, a bounded number of them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from werkzeug.test import Client

from api_plugin.store import Store
from api_plugin.store.tables import AIRFLOW2
from api_plugin.web import app as app_module
from api_plugin.web.app import ApiApp


@pytest.fixture
def app(make_seeded_store: Callable[[str, str], Store]) -> ApiApp:
    return ApiApp(make_seeded_store(AIRFLOW2, "sqlite"), prefix="")


def test_a_kept_match_answers_as_a_fresh_one(app: ApiApp) -> None:
    client = Client(app)
    answers = [client.get("/pools/default_pool") for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3
    assert answers[0].get_json() == answers[2].get_json()
    assert answers[0].get_json()["pool"] == "default_pool"
    assert list(app._matched) == [("/pools/default_pool", "GET")]
    # Another method on the same path is its own match.
    assert client.delete("/pools/default_pool").status_code == 400  # default_pool stays
    assert ("/pools/default_pool", "DELETE") in app._matched
    assert client.get("/pools/nobody").status_code == 404  # the view's 404, kept
    assert len(app._matched) == 3


def test_only_good_matches_of_short_paths_are_kept(app: ApiApp) -> None:
    client = Client(app)
    assert client.get("/no/such/route").status_code == 404
    assert client.post("/pools/default_pool").status_code == 405
    assert client.get("/pools/bad%00name").status_code == 400  # not storable text
    long_name = "p" * app_module.ROUTE_KEPT_MAX_CHARS
    answer = client.get(f"/pools/{long_name}")
    assert answer.status_code == 404 and long_name in answer.get_json()["error"]
    assert list(app._matched) == []


def test_kept_matches_are_bounded(app: ApiApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app._matched, "size", 2)
    client = Client(app)
    for name in ("first", "second", "third", "first"):
        assert client.get(f"/pools/{name}").status_code == 404
    assert list(app._matched) == [("/pools/third", "GET"), ("/pools/first", "GET")]

"""The driver options every PostgreSQL connection gets (``store/engine.py``): no
server-side prepared statements with psycopg 3 unless the URL asks, on both engines."""

from __future__ import annotations

import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from api_plugin.store.engine import make_engine, make_read_engine, postgres_connect_args


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql+psycopg://u@h/airflow", {"connect_timeout": 5, "prepare_threshold": None}),
    ("postgresql+psycopg://u@h/airflow?prepare_threshold=5",
     {"connect_timeout": 5, "prepare_threshold": 5}),
    ("postgresql+psycopg://u@h/airflow?prepare_threshold=None",
     {"connect_timeout": 5, "prepare_threshold": None}),
    ("postgresql+psycopg://u@h/airflow?prepare_threshold=0",
     {"connect_timeout": 5, "prepare_threshold": 0}),
    ("postgresql+psycopg2://u@h/airflow", {"connect_timeout": 5}),
])
def test_postgres_connect_args(url: str, expected: dict[str, object]) -> None:
    assert postgres_connect_args(make_url(url)) == expected


def test_plain_postgresql_url_follows_sqlalchemys_default_driver() -> None:
    """``postgresql://`` is psycopg 3 on SQLAlchemy 2.1 and psycopg2 on 2.0: the options
    follow the driver the URL resolves to."""
    url = make_url("postgresql://u@h/airflow")
    args = postgres_connect_args(url)
    if url.get_driver_name() == "psycopg":
        assert args["prepare_threshold"] is None
    else:
        assert "prepare_threshold" not in args


@pytest.mark.parametrize("value", ["five", "-1", "1.5"])
def test_a_bad_prepare_threshold_is_refused_with_its_name(value: str) -> None:
    with pytest.raises(ValueError, match="prepare_threshold"):
        make_engine(f"postgresql+psycopg://u@h/airflow?prepare_threshold={value}")


class Recorded(Exception):
    """Raised in place of connecting, once the connect arguments are seen."""


@pytest.mark.postgres  # needs the psycopg driver installed (the postgres extra), no server
def test_both_engines_open_connections_without_prepares() -> None:
    """What the driver would be called with, caught by SQLAlchemy's ``do_connect`` event
    before any connection is made: the write engine and the hot reads' engine alike."""
    seen: list[dict[str, object]] = []

    def record(_dialect: object, _record: object, _cargs: object,
               cparams: dict[str, object]) -> None:
        seen.append(dict(cparams))
        raise Recorded

    engine = make_engine("postgresql+psycopg://u@h:5/airflow")
    for each in (engine, make_read_engine(engine)):
        event.listen(each, "do_connect", record)
        with pytest.raises(Recorded):
            each.connect()
    assert [options.get("prepare_threshold", "unset") for options in seen] == [None, None]
    assert all(options["connect_timeout"] == 5 for options in seen)

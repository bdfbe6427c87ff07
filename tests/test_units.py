"""Small pieces: dates, the conf pickle, configuration, serialized DAGs, DAG files."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from api_plugin.cli.dagfiles import DagFileError, read_dag_files, serialize_dag
from api_plugin.dates import isoformat, parse_datetime
from api_plugin.errors import BadRequest
from api_plugin.flavors import FLAVORS
from api_plugin.flavors.intervals import manual_data_interval
from api_plugin.settings.config import Config
from api_plugin.store.safe_pickle import UnreadableConf, dumps_conf, loads_conf
from api_plugin.store.serialized import parse_dag
from conftest import reference_serialized_dag


@pytest.mark.parametrize("text,expected", [
    ("2016-11-16T11:34:15", datetime(2016, 11, 16, 11, 34, 15, tzinfo=UTC)),
    ("2016-11-16T11:34:15.5Z", datetime(2016, 11, 16, 11, 34, 15, 500000, tzinfo=UTC)),
    ("2016-11-16T11:34:15+02:00",
     datetime(2016, 11, 16, 11, 34, 15, tzinfo=timezone(timedelta(hours=2)))),
    ("2016-11-16T11:34:15 02:00",
     datetime(2016, 11, 16, 11, 34, 15, tzinfo=timezone(timedelta(hours=2)))),
    ("2016-11-16 11:34:15", datetime(2016, 11, 16, 11, 34, 15, tzinfo=UTC)),
])
def test_parse_datetime(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text)
    assert parsed == expected and parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("text", ["", "x", "2016-02-30", "0001-01-01T00:00:00+01:00",
                                  "9" * 100, "2016-11-16T11:34:15+25:00"])
def test_parse_datetime_rejects(text: str) -> None:
    with pytest.raises(BadRequest, match="could not be identified as a date"):
        parse_datetime(text)


def test_isoformat_writes_fraction_only_when_nonzero() -> None:
    assert isoformat(datetime(2021, 1, 2, tzinfo=UTC)) == "2021-01-02T00:00:00+00:00"
    assert isoformat(datetime(2021, 1, 2, 0, 0, 0, 5, tzinfo=UTC)).endswith(".000005+00:00")
    assert isoformat(None) == ""


class Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


def test_conf_pickle_round_trip_and_refusals(capsys: pytest.CaptureFixture[str]) -> None:
    conf = {"a": [1, 2.5, None, True], "b": {"c": "d"}, "t": (1,)}
    assert loads_conf(dumps_conf(conf)) == conf
    assert dumps_conf(conf)[1] == 4
    assert loads_conf(pickle.dumps({"x": 1}, protocol=5)) == {"x": 1}
    with pytest.raises(UnreadableConf):
        loads_conf(pickle.dumps(Boom()))
    with pytest.raises(UnreadableConf):
        loads_conf(pickle.dumps({"s": {1, 2}}))
    with pytest.raises(UnreadableConf):
        loads_conf(b"garbage")
    assert capsys.readouterr().out == ""
    assert loads_conf(None) is None


def test_config_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "api_plugin.cfg"
    cfg.write_text("[core]\nsql_alchemy_conn = sqlite:///core.db\n[api]\nauth_backend = deny_all\n")
    env = {"AIRFLOW__API__AUTH_BACKENDS": "password", "API_PLUGIN__API__AUTH_BACKENDS":
           "kerberos, password", "AIRFLOW__WEBSERVER__BIND": "127.0.0.1:9"}
    config = Config.load(cfg, environ=env)
    assert config.sql_alchemy_conn == "sqlite:///core.db"
    assert config.auth_backends == ["kerberos", "password"]
    assert config.get("webserver", "bind") == "127.0.0.1:9"
    assert Config.load(cfg, environ={}).auth_backends == ["deny_all"]
    default = Config.load(tmp_path / "none.cfg", environ={})
    assert default.sql_alchemy_conn == f"sqlite:///{tmp_path / 'api_plugin.db'}"
    assert default.with_overrides(database__sql_alchemy_conn="x").sql_alchemy_conn == "x"


def test_parse_reference_dags_of_both_versions() -> None:
    for flavor in ("airflow1", "airflow2"):
        spec = parse_dag(reference_serialized_dag(flavor))
        assert spec.dag_id == "etl_nightly"
        assert list(spec.tasks) == ["extract", "transform", "load"]
        assert spec.tasks["transform"].upstream == ["extract"]
        assert spec.downstream_closure("extract") == {"transform", "load"}
        assert spec.default_args["start_date"] == datetime(2024, 1, 1, tzinfo=UTC)
        assert spec.default_args["retry_delay"] == timedelta(minutes=3)


def test_manual_data_interval() -> None:
    at = datetime(2025, 7, 1, 4, 30, tzinfo=UTC)
    assert manual_data_interval("@daily", at) == (datetime(2025, 6, 30, tzinfo=UTC),
                                                  datetime(2025, 7, 1, tzinfo=UTC))
    midnight = datetime(2025, 7, 1, tzinfo=UTC)
    assert manual_data_interval("@daily", midnight)[1] == midnight
    assert manual_data_interval(None, at) == (at, at)
    assert manual_data_interval(timedelta(hours=1), at) == (at - timedelta(hours=1), at)


def test_dag_files_are_validated(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("dag_id: x\ntasks:\n  - {task_id: a, upstream: [zzz]}\n")
    (definition,) = [d for _, _, d in read_dag_files(bad)]
    with pytest.raises(DagFileError, match="unknown upstream zzz"):
        serialize_dag(definition, str(bad), FLAVORS["airflow2"])
    dup = {"dag_id": "x", "tasks": [{"task_id": "a"}, {"task_id": "a"}]}
    with pytest.raises(DagFileError, match="unique task_id"):
        serialize_dag(dup, "f", FLAVORS["airflow2"])
    with pytest.raises(DagFileError, match="no such file"):
        read_dag_files(tmp_path / "missing")

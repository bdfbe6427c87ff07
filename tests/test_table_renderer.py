"""``cli/client_commands.render_table``: what the ``api-plugin`` client commands print for
people (``--json`` prints the value itself)."""

from __future__ import annotations

from api_plugin.cli.client_commands import render_table


def test_a_list_of_objects_is_a_table_of_their_keys() -> None:
    runs = [{"dag_id": "etl", "state": "success", "run_id": "manual__1"},
            {"dag_id": "nightly_load", "state": "running", "run_id": "r2"}]
    assert render_table(runs).splitlines() == [
        "dag_id        state    run_id",
        "etl           success  manual__1",
        "nightly_load  running  r2",
    ]


def test_columns_are_every_key_in_first_seen_order_and_gaps_stay_blank() -> None:
    rows = [{"a": 1}, {"b": "two", "a": None}, {"c": True}]
    assert render_table(rows).splitlines() == [
        "a     b    c",
        "1",
        "None  two",
        "           True",
    ]


def test_a_column_is_as_wide_as_its_widest_cell_or_its_name() -> None:
    lines = render_table([{"pool": "p", "slots": 123456789}]).splitlines()
    assert lines == ["pool  slots", "p     123456789"]


def test_nothing_to_list() -> None:
    assert render_table([]) == "(none)"
    assert render_table({"items": []}) == "(none)"


def test_latest_runs_items_are_listed() -> None:
    answer = {"items": [{"dag_id": "d", "execution_date": "2025-01-01T00:00:00+00:00"}]}
    assert render_table(answer).splitlines() == [
        "dag_id  execution_date",
        "d       2025-01-01T00:00:00+00:00",
    ]


def test_an_object_is_aligned_key_value_lines() -> None:
    pool = {"id": 1, "pool": "default_pool", "slots": 128, "description": "Default pool"}
    assert render_table(pool).splitlines() == [
        "id           1",
        "pool         default_pool",
        "slots        128",
        "description  Default pool",
    ]
    assert render_table({"items": [], "more": 1}) == "items  []\nmore   1"
    assert render_table({}) == ""


def test_anything_else_is_its_text() -> None:
    assert render_table("from airflow import DAG\n") == "from airflow import DAG\n"
    assert render_table(None) == "None"

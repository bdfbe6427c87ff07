"""Reading DAG runs: the run list, one run's state, and every DAG's latest run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Index,
    Integer,
    UniqueConstraint,
    bindparam,
    exists,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.sql import Select

from api_plugin.dates import parse_datetime
from api_plugin.errors import BadRequest, NotFound
from api_plugin.flavors.base import RunLink
from api_plugin.services.common import dag_not_in_model, shown_date
from api_plugin.store import QueryBuilder, Store
from api_plugin.store.tables import Tables
from api_plugin.store.types import utc_iso
from api_plugin.web.rendering import Rendered, Streamed

MAX_PAGE = 10_000


def _page_value(name: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadRequest(f"{name} must be a non-negative integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be a non-negative integer, not {value!r}") from None
    if number < 0 or (name == "limit" and number > MAX_PAGE) or number > 2**62:
        raise BadRequest(f"{name} must be between 0 and {MAX_PAGE if name == 'limit' else 2**62}")
    return number


def get_dag_runs(
    store: Store,
    dag_id: str,
    state: str | None = None,
    limit: Any = None,
    offset: Any = None,
    url_base: str = "",
) -> list[dict[str, Any]]:
    """The DAG's runs in date order (3.x: ``run_after``, as a run may have no logical
    date, listed as null); an unknown DAG is a 400 here."""
    build, params = _runs_page(store, dag_id, state, limit, offset)
    rows = store.prepared(build).all(**params)
    return _run_items(_checked(store, dag_id, rows), store.flavor.run_links(dag_id, url_base))


#: The longest ``state`` filter a short list is remembered by (Airflow's states are
#: words); the DAG id is one the database has.
MAX_STATE_KEPT = 64
#: Rows per fetch when a run list is streamed; the first fetch is of FIRST_CHUNK rows,
#: as many as a usual page, so that the first bytes leave as soon as a page's would.
STREAM_CHUNK = 1000
FIRST_CHUNK = 100


def stream_dag_runs(
    store: Store,
    dag_id: str,
    state: str | None = None,
    limit: Any = None,
    offset: Any = None,
    url_base: str = "",
) -> list[dict[str, Any]] | Streamed:
    """``get_dag_runs`` for the web: a list with no ``limit`` (as Airflow's clients ask
    for it, and which may be every run the DAG ever had) comes as a ``Streamed``, its
    rows fetched ``STREAM_CHUNK`` at a time (``FIRST_CHUNK`` first) and encoded as
    they come.

    The checks (bad paging, unknown DAG) are made before anything is sent. Each answer
    is one statement, so one snapshot. A list is read through the stream: its first
    fetch (one round trip on PostgreSQL, as a page's) brings ``FIRST_CHUNK + 1`` rows,
    so a list that fits in ``FIRST_CHUNK`` is answered whole from it; a longer one goes
    on from there. A list found short that way (``Store.short_lists``) is read the next
    time as a page of ``FIRST_CHUNK + 1`` rows instead, which a server has prepared
    where a stream's statement is parsed and planned anew: a DAG with few runs, polled
    with no limit as Airflow's clients do, costs what a page costs. Should it have grown
    past the page, the page is dropped and the list streamed.
    """
    build, params = _runs_page(store, dag_id, state, limit, offset)
    link = store.flavor.run_links(dag_id, url_base)
    if params["lim"] != NO_LIMIT:
        return _run_items(_checked(store, dag_id, store.prepared(build).all(**params)), link)
    first_chunk, chunk = FIRST_CHUNK, STREAM_CHUNK
    listed = (dag_id, state, params["off"])
    if listed in store.short_lists:
        rows = store.prepared(build).all(**{**params, "lim": first_chunk + 1})
        if len(rows) <= first_chunk:
            return _run_items(_checked(store, dag_id, rows), link)
        store.short_lists.pop(listed)
    chunks = store.stream(build, chunk, first_chunk + 1, **params)
    try:
        first = _checked(store, dag_id, next(chunks, []))
    except BaseException:
        chunks.close()
        raise
    if len(first) <= first_chunk:
        chunks.close()
        if len(state or "") <= MAX_STATE_KEPT:  # a key's size stays bounded
            store.short_lists.put(listed, True)
        return _run_items(first, link)
    return Streamed(_item_chunks(first, first_chunk, chunks, chunk, link))


def _checked(store: Store, dag_id: str, rows: list[Any]) -> list[Any]:
    """``rows`` if the DAG is known: on a server each row says whether it is
    (``dag_known``), saving a round trip; with no row, or on SQLite (where a query
    costs no round trip and the column would be computed for every row), a query of
    its own tells. An unknown DAG is a 400."""
    if rows and "dag_known" in rows[0]._fields:
        known = bool(rows[0].dag_known)
    else:
        known = store.prepared(_dag_exists_query).first(dag_id=dag_id) is not None
    if not known:
        raise BadRequest(dag_not_in_model(dag_id).message)
    return rows


def _item_chunks(first: list[Any], first_chunk: int, chunks: Iterator[list[Any]],
                 chunk: int, link: RunLink) -> Iterator[list[dict[str, Any]]]:
    """The items of ``first``'s first ``first_chunk`` rows, then of the rest in lists
    of ``chunk`` (the last shorter): the first fetch's extra row waits for the next."""
    try:
        yield _run_items(first[:first_chunk], link)
        pending = first[first_chunk:]
        for rows in chunks:
            pending.extend(rows)
            while len(pending) > chunk:
                yield _run_items(pending[:chunk], link)
                del pending[:chunk]
        if pending:
            yield _run_items(pending, link)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # the stream's connection back to the pool, even when cut short


def _runs_page(store: Store, dag_id: str, state: str | None, limit: Any,
               offset: Any) -> tuple[QueryBuilder, dict[str, Any]]:
    """The run list's query builder and its parameters, once the paging is checked.

    On a server the rows also say whether the DAG is known (one round trip less); on
    SQLite, where a query costs no round trip, the column would be computed per row."""
    lim, off = _page_value("limit", limit), _page_value("offset", offset)
    params: dict[str, Any] = {"dag_id": dag_id, "lim": NO_LIMIT if lim is None else lim,
                              "off": off or 0}
    known = not store.is_sqlite
    if state:
        build = _runs_in_state_known_query if known else _runs_in_state_query
        return build, {**params, "state": state}
    return (_runs_known_query if known else _runs_query), params


def _run_items(rows: list[Any], link: RunLink) -> list[dict[str, Any]]:
    """The answer's items, ``link`` making their runs' links (``Flavor.run_links``);
    the hot loop of a run list. The rows' dates come written already (``utc_iso``); a
    run may have no logical date on 3.x (None, listed as null) and no start date
    (``""``)."""
    return [{
        "id": row.id,
        "run_id": row.run_id,
        "state": row.state,
        "dag_id": row.dag_id,
        "execution_date": row.execution_date,
        "start_date": row.start_date or "",
        "dag_run_url": link(row.run_id, row.execution_date),
    } for row in rows]


NO_LIMIT = 2**62


def _dag_exists_query(t: Tables) -> Select[Any]:
    return select(t.dag.c.dag_id).where(t.dag.c.dag_id == bindparam("dag_id")).limit(1)


def _runs_query(t: Tables) -> Select[Any]:
    """A page of the DAG's runs, in date order, their dates written (``utc_iso``)."""
    dr = t.dag_run
    return (
        select(dr.c.id, dr.c.run_id, dr.c.state, dr.c.dag_id,
               utc_iso(t.run_date).label("execution_date"),
               utc_iso(dr.c.start_date).label("start_date"))
        .where(dr.c.dag_id == bindparam("dag_id"))
        .order_by(t.run_order)
        .limit(bindparam("lim", type_=BigInteger))
        .offset(bindparam("off", type_=BigInteger))
    )


def _runs_in_state_query(t: Tables) -> Select[Any]:
    """``_runs_query`` for the runs in one state."""
    return _runs_query(t).where(t.dag_run.c.state == bindparam("state"))


def _dag_known(t: Tables, query: Select[Any]) -> Select[Any]:
    """``query`` with a column saying whether the DAG is known (see ``_checked``)."""
    return query.add_columns(
        exists().where(t.dag.c.dag_id == bindparam("dag_id")).label("dag_known"))


def _runs_known_query(t: Tables) -> Select[Any]:
    return _dag_known(t, _runs_query(t))


def _runs_in_state_known_query(t: Tables) -> Select[Any]:
    return _dag_known(t, _runs_in_state_query(t))


def get_dag_run_state(store: Store, dag_id: str, execution_date: Any) -> dict[str, Any]:
    """``{"state": ...}`` of the run at that date, found with one query."""
    return {"state": find_run(store, dag_id, execution_date).state}


def find_run(store: Store, dag_id: str, execution_date: Any) -> Any:
    """The run of ``dag_id`` at that date (its ``run_pk``, ``run_id``, ``state``), with
    the reference's errors: bad date 400, unknown DAG or run 404; one query."""
    when = parse_datetime(execution_date) if isinstance(execution_date, str) else execution_date
    row = store.prepared(_run_state_query).first(dag_id=dag_id, when=when)
    if row is None:
        raise dag_not_in_model(dag_id)
    if row.sd_dag_id is None:
        raise NotFound(f"Dag id {dag_id} not found")
    if row.run_pk is None:
        raise run_not_found(store, dag_id, when)
    return row


def _run_state_query(t: Tables) -> Select[Any]:
    dag, sd, dr = t.dag, t.serialized_dag, t.dag_run
    return (
        select(dag.c.dag_id, sd.c.dag_id.label("sd_dag_id"), dr.c.id.label("run_pk"),
               dr.c.state, dr.c.run_id, t.run_date.label("execution_date"))
        .select_from(
            dag.outerjoin(sd, t.serialized_of(dag.c.dag_id)).outerjoin(
                dr, (dr.c.dag_id == dag.c.dag_id)
                & (t.run_date == bindparam("when"))
            )
        )
        .where(dag.c.dag_id == bindparam("dag_id"))
        .limit(1)
    )


def run_not_found(store: Store, dag_id: str, when: Any) -> NotFound:
    return NotFound(f"Dag Run for date {shown_date(store, when)} not found in dag {dag_id}")


def _dag_ids(t: Tables) -> Any:
    """Every dag_id that has runs, in order: a recursive query hopping from one to the
    next through the index on ``dag_run.dag_id`` (a GROUP BY or DISTINCT reads every
    run: 20 ms at 100,000 runs on SQLite)."""
    dr, step = t.dag_run, t.dag_run.alias("step")
    ids = select(func.min(dr.c.dag_id).label("dag_id")).cte("ids", recursive=True)
    return ids.union_all(
        select(select(func.min(step.c.dag_id)).where(step.c.dag_id > ids.c.dag_id)
               .scalar_subquery())
        .where(ids.c.dag_id.is_not(None))
    )


def _latest_runs_query(t: Tables) -> Select[Any]:
    """Each dag_id's newest run (``latest_runs``) where there is no LATERAL (SQLite):
    for each dag_id (``_dag_ids``), the id of the run that comes last in date order,
    then that run by its id; two index seeks per DAG and a primary key lookup."""
    dr, newest = t.dag_run, t.dag_run.alias("newest")
    ids = _dag_ids(t)
    latest = (select(newest.c.id).where(newest.c.dag_id == ids.c.dag_id)
              .order_by(newest.c[t.run_order.name].desc()).limit(1).scalar_subquery())
    return (
        select(dr.c.dag_id, utc_iso(t.run_date).label("execution_date"),
               utc_iso(dr.c.start_date).label("start_date"), dr.c.run_id)
        .select_from(ids.join(dr, (dr.c.dag_id == ids.c.dag_id) & (dr.c.id == latest)))
        .order_by(dr.c.dag_id)
    )


#: ``LIMIT 1`` written in the SQL, not bound: a plan PostgreSQL makes once for a prepared
#: statement (psycopg's prepare_threshold) then knows that it seeks one row.
_ONE = literal_column("1", Integer)


def _latest_runs_walk_query(t: Tables) -> Select[Any]:
    """``_latest_runs_query`` on PostgreSQL when an index leads with ``(dag_id,
    run_order)`` (1.x and 2.x: the unique ``(dag_id, execution_date)``): one seek per
    DAG. A recursive query walks that index backwards, each step taking the first entry
    below the last dag_id, which is the next dag_id's newest run, its columns with it.
    At 10,000 DAGs and a million runs the server spends about 150 ms on it against
    220 ms on ``_latest_runs_query`` (two seeks and a lookup per DAG)."""
    dr, below = t.dag_run, t.dag_run.alias("below")

    def newest(runs: Any) -> Select[Any]:
        return (select(runs.c.dag_id, runs.c[t.run_date.name].label("execution_date"),
                       runs.c.start_date, runs.c.run_id)
                .order_by(runs.c.dag_id.desc(), runs.c[t.run_order.name].desc())
                .limit(_ONE))

    walk = newest(dr).cte("walk", recursive=True)
    step = newest(below).where(below.c.dag_id < walk.c.dag_id).lateral("step")
    walk = walk.union_all(select(*step.c).select_from(walk.join(step, true())))
    return _dates_written(walk.c.dag_id, walk.c.execution_date, walk.c.start_date,
                          walk.c.run_id)


def _latest_runs_lateral_query(t: Tables) -> Select[Any]:
    """``_latest_runs_query`` on PostgreSQL when no index leads with ``(dag_id,
    run_order)`` (3.x orders by ``run_after``): for each dag_id (``_dag_ids``) the
    newest run's columns from a LATERAL subquery, with no lookup by id after it."""
    ids, newest = _dag_ids(t), t.dag_run.alias("newest")
    run = (select(newest.c[t.run_date.name].label("execution_date"), newest.c.start_date,
                  newest.c.run_id)
           .where(newest.c.dag_id == ids.c.dag_id)
           .order_by(newest.c[t.run_order.name].desc()).limit(_ONE).lateral("run"))
    return _dates_written(ids.c.dag_id, run.c.execution_date, run.c.start_date,
                          run.c.run_id).select_from(ids.join(run, true()))


def _dates_written(dag_id: Any, execution_date: Any, start_date: Any,
                   run_id: Any) -> Select[Any]:
    """PostgreSQL's latest_runs rows, by dag_id, with their dates written by the server
    (``utc_iso``): at 10,000 DAGs the driver builds no 20,000 datetimes for Python to
    convert to UTC and write."""
    return (
        select(dag_id, utc_iso(execution_date).label("execution_date"),
               utc_iso(start_date).label("start_date"), run_id)
        .order_by(dag_id)
    )


def _latest_runs_pg_query(t: Tables) -> Select[Any]:
    """PostgreSQL's latest_runs: the walk where an index allows it, else the LATERAL
    form. Decided once, when the prepared query is built from the tables."""
    return (_latest_runs_walk_query(t) if _run_order_indexed(t)
            else _latest_runs_lateral_query(t))


def _run_order_indexed(t: Tables) -> bool:
    """Whether an index of ``dag_run`` is on ``(dag_id, run_order)``, in that order."""
    wanted = ["dag_id", t.run_order.name]
    return any([c.name for c in index.columns] == wanted
               for index in (*t.dag_run.indexes, *t.dag_run.constraints)
               if isinstance(index, Index | UniqueConstraint))


def latest_runs(store: Store, url_base: str = "") -> dict[str, Any]:
    """Each DAG's newest run, ordered by dag_id, in one query."""
    # Served from a per-process copy while the database has not changed since (SQLite
    # and PostgreSQL tell cheaply, see Store.change_marker; elsewhere the marker is
    # None and nothing is cached). The marker is read before the query: a commit in
    # between changes the next marker, so a result is never kept past a change.
    marker = store.change_marker()
    if marker is not None:
        cached = store.cache.get(("latest_runs", url_base))
        if cached is not None and cached[0] == marker:
            return cast(dict[str, Any], cached[1])
    rows = store.prepared(_latest_runs_pg_query if store.is_postgresql
                          else _latest_runs_query).all()
    # The hot loop of a rebuild (10,000 rows at 10,000 DAGs), as in ``_run_items``.
    link = store.flavor.run_link
    result: dict[str, Any] = {"items": [
        {"dag_id": dag_id, "execution_date": run_date, "start_date": start_date or "",
         "dag_run_url": link(dag_id, run_id, run_date, url_base)}
        for dag_id, run_date, start_date, run_id in rows]}
    if marker is not None:
        # Kept with its JSON already encoded: a cache hit then costs no encoding either.
        result = Rendered(result)
        store.cache[("latest_runs", url_base)] = (marker, result)
    return result

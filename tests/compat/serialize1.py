"""Run by Airflow 1.10's own interpreter: parse the DAG folder and store every DAG as
the 1.10 scheduler would (dag rows, serialized_dag, dag_code)."""

from airflow.models import DagBag
from airflow.models.dagcode import DagCode
from airflow.models.serialized_dag import SerializedDagModel

bag = DagBag(include_examples=False)
assert not bag.import_errors, bag.import_errors
for dag in bag.dags.values():
    dag.sync_to_db()
    SerializedDagModel.write_dag(dag)
DagCode.bulk_sync_to_db([dag.fileloc for dag in bag.dags.values()])
print(sorted(bag.dags))

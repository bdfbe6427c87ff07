from datetime import datetime

from airflow import DAG
from airflow.datasets import Dataset
from airflow.lineage.entities import File
from airflow.operators.bash import BashOperator

with DAG("lineage", schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
         description="tasks with inlets and outlets", tags=["compat"]) as dag:
    fetch = BashOperator(task_id="fetch", bash_command="echo fetch",
                         inlets=[File(url="/data/in.csv")],
                         outlets=[Dataset("s3://lake/raw"), "a plain string"])
    publish = BashOperator(task_id="publish", bash_command="echo publish",
                           outlets=[Dataset("s3://lake/published", extra={"team": "ops"})])
    fetch >> publish

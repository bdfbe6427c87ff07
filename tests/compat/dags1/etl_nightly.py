from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash_operator import BashOperator
from airflow.operators.dummy_operator import DummyOperator

args = {"owner": "ops", "retries": 2, "retry_delay": timedelta(minutes=3),
        "start_date": datetime(2024, 1, 1)}
with DAG("etl_nightly", default_args=args, schedule_interval="@daily", catchup=False,
         description="nightly load") as dag:
    extract = BashOperator(task_id="extract", bash_command="echo extract", pool="default_pool")
    transform = DummyOperator(task_id="transform", trigger_rule="all_done")
    load = BashOperator(task_id="load", bash_command="echo load", start_date=datetime(2025, 6, 1))
    extract >> transform >> load

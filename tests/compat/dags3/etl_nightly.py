from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

args = {"owner": "ops", "retries": 2, "retry_delay": timedelta(minutes=3),
        "start_date": datetime(2024, 1, 1)}
with DAG("etl_nightly", default_args=args, schedule="@daily", catchup=False,
         description="nightly load") as dag:
    extract = BashOperator(task_id="extract", bash_command="echo extract", pool="default_pool")
    transform = EmptyOperator(task_id="transform", trigger_rule="all_done")
    load = BashOperator(task_id="load", bash_command="echo load", start_date=datetime(2025, 6, 1))
    extract >> transform >> load

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("chain", schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
         description="a diamond with weight rules", tags=["compat"]) as dag:
    start = EmptyOperator(task_id="start")
    left = BashOperator(task_id="left", bash_command="echo left", priority_weight=3)
    right = BashOperator(task_id="right", bash_command="echo right", weight_rule="upstream",
                         pool_slots=2, queue="q1")
    end = BashOperator(task_id="end", bash_command="echo end", weight_rule="absolute",
                       priority_weight=7, retries=1)
    start >> [left, right] >> end

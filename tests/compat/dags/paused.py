from datetime import datetime

from airflow import DAG
from airflow.operators.empty import EmptyOperator

with DAG("paused_dag", schedule="@hourly", start_date=datetime(2024, 1, 1), catchup=False,
         is_paused_upon_creation=True) as dag:
    EmptyOperator(task_id="only")

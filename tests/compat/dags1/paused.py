from datetime import datetime

from airflow import DAG
from airflow.operators.dummy_operator import DummyOperator

with DAG("paused_dag", schedule_interval="@hourly", start_date=datetime(2024, 1, 1),
         catchup=False, is_paused_upon_creation=True) as dag:
    DummyOperator(task_id="only")

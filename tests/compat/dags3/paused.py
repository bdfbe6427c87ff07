from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("paused_dag", schedule="@hourly", start_date=datetime(2024, 1, 1), catchup=False,
         is_paused_upon_creation=True) as dag:
    EmptyOperator(task_id="only")

"""Running the app: mounting it into a host, Paste factories, gunicorn workers and
``api-plugin serve``, and the Airflow plugin that hosts it inside Airflow 3's api-server."""

"""Airflow-facing shell of churnguard: operators users reuse, their extra links, and a small web app
that serves the day's reports from the data root (file:// or S3) inside the Airflow API server."""

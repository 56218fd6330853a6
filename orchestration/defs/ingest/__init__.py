"""Ingestion as Dagster assets and the landing sensor (see definitions.py)."""

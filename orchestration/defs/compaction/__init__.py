"""Compaction of the raw layer as a scheduled Dagster asset (see definitions.py)."""

"""Ingestion: read contract files, validate, quarantine, land in the raw layer. No Dagster here."""

"""One folder per concern, each exposing `defs` (a dagster.Definitions)."""

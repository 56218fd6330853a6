from orchestration.defs.ingest.definitions import defs

__all__ = ["defs"]

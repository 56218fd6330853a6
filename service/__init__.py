"""`agent-analytics serve`: the HTTP service that receives agents' data and serves the numbers.

- `app`: the FastAPI application (`create_app`), its OpenAPI document;
- `ingest_routes`: POST /v1/traces (OTLP/HTTP) and /v1/events (native JSONL), written durably
  into landing/ before they are acknowledged;
- `read_routes`: POST /v1/analytics/export and GET /v1/metrics (the metrics document, JSON or CSV);
- `health_routes`: GET /healthz and /readyz;
- `auth`: bearer tokens and their scopes; `bodies`: request bodies within the size limit
  (checked while decompressing); `otlp`: OTLP request and response bodies; `errors`: the
  JSON errors and the handlers that log each one once.
Details: docs/service.md.
"""

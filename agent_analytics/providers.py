"""Provider names as the warehouse stores them: lower-cased and trimmed, and the OpenTelemetry
`gen_ai.provider.name` values (and a few spellings) mapped to one name per provider. Ingest
normalizes every call's provider this way (ingestion/load.py), and the prices file's
providers are normalized the same way (agent_analytics/prices.py), so both meet."""

from __future__ import annotations

PROVIDER_ALIASES: dict[str, str] = {
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "vertex_ai": "google",
    "gemini": "google",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.openai": "azure",
    "aws.bedrock": "aws",
    "bedrock": "aws",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "mistral_ai": "mistral",
    "ibm.watsonx.ai": "ibm",
}


def normalize_provider(name: str) -> str:
    key = name.strip().lower()
    return PROVIDER_ALIASES.get(key, key)

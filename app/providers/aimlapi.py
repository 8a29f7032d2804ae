"""AI/ML API: OpenAI's wire format with its own error body and 201 for success."""

from __future__ import annotations

from app.providers.base import ALL_RESPONSE_FORMATS, ANSWER_FIELDS, Capabilities
from app.providers.openai_compat import OpenAICompatible


class AIMLAPI(OpenAICompatible):
    """OpenAI-compatible; `{message, path, requestId, statusCode}` errors are read by
    `upstream_message`, and any 2xx (its specs declare 201) counts as success."""

    name = "aimlapi"
    default_base_url = "https://api.aimlapi.com/v1"
    capabilities = Capabilities(
        needs_api_key=True,
        native_n=True,
        answer_fields=frozenset(ANSWER_FIELDS),
        lists_models=True,
        response_formats=ALL_RESPONSE_FORMATS,
        audio_input=True,
    )

"""Model entries for gateways under test, the upstream keys they hold, and a request to send."""

from __future__ import annotations

from typing import Any

from tests.e2e.fakes.openai_compat import FakeUpstream

OPENAI_KEY = "sk-e2e-openai-upstream-4f9a7c21d0"
AIMLAPI_KEY = "aiml-e2e-upstream-b3e81d6f55"
UPSTREAM_KEYS = (OPENAI_KEY, AIMLAPI_KEY)

IMAGE_URL = "https://images.example.com/cats/tabby.jpg?size=large"


def entry(name: str, upstream: FakeUpstream | str, **fields: Any) -> dict[str, Any]:
    """A model entry routed to a fake (its provider and key follow its flavour) or to a URL."""
    if isinstance(upstream, FakeUpstream):
        provider, base_url = upstream.flavour, upstream.base_url
    else:
        provider, base_url = "openai", upstream
    key = AIMLAPI_KEY if provider == "aimlapi" else OPENAI_KEY
    return {"name": name, "provider": provider, "base_url": base_url, "api_key": key, **fields}


def default_models(openai: FakeUpstream, aimlapi: FakeUpstream) -> list[dict[str, Any]]:
    """The shared gateway's models: named routes, wildcard families, `inspect`, one unserved."""
    return [
        entry("gpt-vision", openai, upstream_model="upstream-vision"),
        entry("aiml-vision", aimlapi, upstream_model="upstream-aiml-vision"),
        entry("fake/*", openai),
        entry("aiml/*", aimlapi),
        {"name": "inspect", "provider": "inspect"},
        entry("needs-key", aimlapi, api_key="${AIMLAPI_E2E_KEY:-}"),
    ]


def user_message(text: str = "What is in this image?",
                 image_url: str = IMAGE_URL) -> list[dict[str, Any]]:
    """One user turn with a text part and an image part."""
    return [{"role": "user", "content": [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": image_url, "detail": "low"}},
    ]}]

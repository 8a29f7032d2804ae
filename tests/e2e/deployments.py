"""Model entries for gateways under test, the upstream keys they hold, and requests to send."""

from __future__ import annotations

import base64
import io
import os
from typing import Any

from openai.types.chat import ChatCompletionMessageParam
from PIL import Image

from tests.e2e.fakes.openai_compat import FakeUpstream

OPENAI_KEY = "sk-e2e-openai-upstream-4f9a7c21d0"
AIMLAPI_KEY = "aiml-e2e-upstream-b3e81d6f55"
UPSTREAM_KEYS = (OPENAI_KEY, AIMLAPI_KEY)

IMAGE_URL = "https://images.example.invalid/cats/tabby.jpg?size=large"


def entry(name: str, upstream: FakeUpstream | str, **fields: Any) -> dict[str, Any]:
    """A model entry routed to a fake (its provider and key follow its flavour) or to a URL.

    No retries unless asked for, so that each upstream failure shows at once.
    """
    if isinstance(upstream, FakeUpstream):
        provider, base_url = upstream.flavour, upstream.base_url
    else:
        provider, base_url = "openai", upstream
    key = AIMLAPI_KEY if provider == "aimlapi" else OPENAI_KEY
    return {
        "name": name,
        "provider": provider,
        "base_url": base_url,
        "api_key": key,
        "retries": 0,
        **fields,
    }


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


def user_message(
    text: str = "What is in this image?", image_url: str = IMAGE_URL
) -> list[ChatCompletionMessageParam]:
    """One user turn with a text part and an image part."""
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": text},
                {"type": "image_url", "image_url": {"url": image_url, "detail": "low"}},
            ],
        }
    ]


def chat_request(model: str, **fields: Any) -> dict[str, Any]:
    """A Chat Completions body for raw HTTP tests."""
    return {"model": model, "messages": user_message(), **fields}


def inspect_request(**fields: Any) -> dict[str, Any]:
    """A body `inspect` answers: its image inline, since it fetches image URLs."""
    return chat_request("inspect", messages=inspect_message(), **fields)


def inspect_message() -> list[ChatCompletionMessageParam]:
    return user_message(image_url=png_data_uri(4, 3))


def png_bytes(width: int, height: int, color: str | None = "red") -> bytes:
    """A real PNG of the given size: one colour, or random noise (which compresses badly)."""
    if color is None:
        image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    else:
        image = Image.new("RGB", (width, height), color)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png_data_uri(width: int, height: int, color: str | None = "red") -> str:
    """`png_bytes` as a `data:image/png;base64,` URI."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(width, height, color)).decode()

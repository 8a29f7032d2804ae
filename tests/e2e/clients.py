"""SDK clients for a gateway under test, with no retries so that every failure shows at once."""

from __future__ import annotations

from typing import Any

import openai


def sdk(gateway: str, api_key: str = "test", **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=api_key, max_retries=0, **options)


def async_sdk(gateway: str, api_key: str = "test") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key=api_key, max_retries=0)

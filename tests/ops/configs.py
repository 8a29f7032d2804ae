"""Gateway configs for the ops and hostile-input tests, as the YAML trees `python -m app` reads."""

from __future__ import annotations

from typing import Any

INSPECT_ONLY = [{"name": "inspect", "provider": "inspect"}]


def gateway_config(
    models: list[dict[str, Any]] | None = None, *, redis_url: str | None = None, **sections: Any
) -> dict[str, Any]:
    """`models` (default: only the offline `inspect`) behind a gateway whose state is in Redis
    when `redis_url` is given."""
    state = {"backend": "redis", "url": redis_url} if redis_url else {"backend": "memory"}
    return {"state": state, "models": models or INSPECT_ONLY, **sections}

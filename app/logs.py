"""Logging: one JSON object per line, request id attached, secrets scrubbed from every record."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import orjson

from app.context import current_request
from app.redaction import scrub

ACCESS = logging.getLogger("app.access")
_HANDLER_NAME = "vision-gateway"


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request().request_id
        if request_id:
            payload["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info:
            payload["error"] = record.exc_text or self.formatException(record.exc_info)
        return orjson.dumps(payload, default=str).decode()


class ScrubbingFilter(logging.Filter):
    """Keys, bearer tokens, URL query strings and base64 blobs never reach a log line."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(secret for secret in secrets if len(secret) >= 4)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub(message, self.secrets)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {
                key: scrub(value, self.secrets) if isinstance(value, str) else value
                for key, value in fields.items()
            }
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = scrub(text, self.secrets)
        return True


def configure_logging(log_format: str, secrets: Iterable[str], level: str | None = None) -> None:
    """Send every logger's records, uvicorn's included, through one scrubbing handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ScrubbingFilter(secrets))
    root = logging.getLogger()
    for existing in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel((level or os.environ.get("LOG_LEVEL", "info")).upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # httpx logs every upstream call at INFO; the request log line says what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The request log (app.access) replaces uvicorn's access log, which stays off.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False


def log_request(model: str, provider: str, status: int, *, stream: bool, **more: object) -> None:
    """The one line each chat request leaves: who, what, how it went, how long, which images."""
    context = current_request()
    fields: dict[str, object] = {
        "event": "chat_completion",
        "model": model,
        "provider": provider,
        "status": status,
        "stream": stream,
        "duration_ms": round(context.elapsed_ms(), 3),
        "images": {
            "count": len(context.images),
            "bytes": sum(size for size, _ in context.images),
            "sha256": [prefix for _, prefix in context.images],
        },
    }
    if not stream:
        fields["overhead_ms"] = round(context.overhead_ms(), 3)
    fields.update(more)
    ACCESS.info("%s %s -> %d", model, provider, status, extra={"fields": fields})


@contextmanager
def request_logged(model: str, provider: Callable[[], str], *, stream: bool) -> Iterator[None]:
    """Log the request when it is answered; a stream that started logs when it ends."""
    status, failed_provider = 200, None
    try:
        yield
    except BaseException as exc:
        status = int(getattr(exc, "status_code", 500))
        failed_provider = getattr(exc, "provider", None)
        raise
    finally:
        if not (stream and status == 200):
            log_request(model, failed_provider or provider(), status, stream=stream)

"""Logging: one JSON object per line, request id attached, secrets scrubbed from every record."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterable

import orjson

from app.errors.quoting import shortened
from app.observe.record import UNMATCHED, RequestRecord, current_request_id
from app.observe.redaction import scrub

ACCESS = logging.getLogger("app.access")
_EVENTS = {"chat": "chat_completion", "responses": "response"}
# Probes come every few seconds from orchestrators and scrapers: their lines are debug lines.
_PROBES = frozenset({"/health", "/ready", "/metrics"})
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
        request_id = current_request_id()
        if request_id:
            payload["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info:
            payload["error"] = record.exc_text or self.formatException(record.exc_info)
        try:
            return orjson.dumps(payload, default=str).decode()
        except TypeError:  # an integer past 64 bits, say: the line is written all the same
            return json.dumps(payload, default=str)


class TextFormatter(logging.Formatter):
    """Lines for humans: a request line also says how long it took, and who asked."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and "client" in fields:
            line += (
                f" in {fields['duration_ms']:.1f} ms from {fields['client'] or '-'}"
                f' "{fields["user_agent"]}"'
            )
        return line


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


class UpgradeNotices(logging.Filter):
    """uvicorn warns of every request to upgrade its connection (to WebSocket, to h2c) that it
    does not honour, and suggests installing a WebSocket library. The gateway answers such a
    request as a plain one on purpose (it serves no WebSocket), so these are debug lines."""

    NOTICES = ("Unsupported upgrade request.", "No supported WebSocket library detected.")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and str(record.msg).startswith(self.NOTICES):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def configure_logging(log_format: str, secrets: Iterable[str], level: str | None = None) -> None:
    """Send every logger's records, uvicorn's included, through one scrubbing handler."""
    # No line names its thread, process or source line: the logging module need not look
    # them up for every record (its documented optimisation flags).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ScrubbingFilter(secrets))
    root = logging.getLogger()
    for existing in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel((level or os.environ.get("LOG_LEVEL", "info")).upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    server = logging.getLogger("uvicorn.error")
    for notices in [f for f in server.filters if isinstance(f, UpgradeNotices)]:
        server.removeFilter(notices)
    server.addFilter(UpgradeNotices())
    # httpx logs every upstream call at INFO; the request log line says what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The request log (app.access) replaces uvicorn's access log, which stays off.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False


def log_record(record: RequestRecord) -> None:
    """The one line each request leaves: what was asked, of whom, how it went, how long."""
    level = logging.DEBUG if record.route in _PROBES else logging.INFO
    if not ACCESS.isEnabledFor(level):
        return
    # An unknown path is logged as the client asked for it (shortened; the line is scrubbed
    # like any other): that is what an operator looks for. Metrics keep the bounded label.
    path = _printable(shortened(record.path)) if record.route == UNMATCHED else record.route
    fields: dict[str, object] = {
        "event": _EVENTS.get(record.api or "", "http_request"),
        "method": record.method,
        "path": path,
        "status": record.status,
        "outcome": record.outcome,
        "duration_ms": round(record.elapsed_ms(), 3),
        "client": record.peer,
        "user_agent": record.user_agent,
    }
    if record.error_code:
        fields["error"] = record.error_code
    if record.api is not None:
        fields.update(model=record.model, provider=record.provider, key=record.key)
        fields["stream"] = record.stream
        fields["images"] = {
            "count": len(record.images),
            "bytes": sum(size for size, _ in record.images),
            "sha256": [prefix for _, prefix in record.images],
        }
        if record.cache is not None:
            fields["cache"] = record.cache
        if record.document_pages:
            fields["documents"] = {
                "pages": record.document_pages,
                "render_ms": round(record.render_s * 1000, 3),
            }
        if not record.stream:
            fields["overhead_ms"] = round(record.overhead_ms(), 3)
        if record.usage is not None:
            fields["usage"] = {
                "prompt_tokens": record.usage.prompt_tokens,
                "completion_tokens": record.usage.completion_tokens,
            }
    # A chat request refused before its model was read is named by its path.
    what = record.model if record.api is not None and record.model else path
    ACCESS.log(level, "%s %s -> %d", record.method, what, record.status, extra={"fields": fields})


def _printable(text: str) -> str:
    """`text` with any control character (a decoded `%0A`, say) written as an escape, so a
    path can't break a text log line in two."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)

"""What an endpoint is: a path pattern, its methods, and a small handler behind the front layer."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.routing import compile_path
from starlette.types import Receive, Scope

from app.api.client import ClientWatch
from app.api.replies import Reply
from app.config import ApiKey
from app.errors import MethodNotAllowed, RouteNotFound
from app.errors.quoting import shortened
from app.observe.record import RequestRecord
from app.service.gateway import Gateway


@dataclass
class Incoming:
    """A request as a handler sees it: authenticated, its body read within the limit."""

    gateway: Gateway
    scope: Scope
    receive: Receive
    record: RequestRecord
    key: ApiKey | None
    body: bytes | bytearray
    params: dict[str, str]
    client: ClientWatch

    @property
    def headers(self) -> Headers:
        return Headers(scope=self.scope)

    @property
    def query(self) -> str:
        return bytes(self.scope.get("query_string", b"")).decode("latin-1")


Handler = Callable[[Incoming], Awaitable[Reply]]


@dataclass(frozen=True)
class Endpoint:
    """One public path (and its aliases) with its handler and what it needs up front."""

    path: str
    methods: tuple[str, ...]
    handler: Handler
    summary: str
    aliases: tuple[str, ...] = ()
    api: str | None = None  # "chat" or "responses": a model request, recorded as one
    needs_key: bool = True
    reads_body: bool = False
    documented: bool = True
    request_model: type[BaseModel] | None = None
    response_model: type[BaseModel] | None = None
    _patterns: list[re.Pattern[str]] = field(default_factory=list, compare=False)

    def __post_init__(self) -> None:
        for path in (self.path, *self.aliases):
            if "{" in path:
                self._patterns.append(compile_path(path)[0])

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path, *self.aliases)


@dataclass(frozen=True)
class Match:
    endpoint: Endpoint
    params: dict[str, str]


class Endpoints:
    """Finds the endpoint for a method and path; exact paths are one dictionary look-up."""

    def __init__(self, endpoints: list[Endpoint]) -> None:
        self.all = endpoints
        self._exact: dict[str, list[Endpoint]] = {}
        for endpoint in endpoints:
            for path in endpoint.paths:
                if "{" not in path:
                    self._exact.setdefault(path, []).append(endpoint)

    def find(self, path: str) -> list[Match]:
        """The endpoints at `path`, whatever their methods."""
        return [Match(e, {}) for e in self._exact.get(path, ())] or self._by_pattern(path)

    def pick(self, method: str, path: str, candidates: list[Match]) -> Match:
        """The one of `candidates` serving `method`; 404 or 405 naming what exists instead."""
        for candidate in candidates:
            if method in candidate.endpoint.methods or (
                method == "HEAD" and "GET" in candidate.endpoint.methods
            ):
                return candidate
        shown = shortened(path)
        if candidates:
            allowed = sorted({m for c in candidates for m in c.endpoint.methods})
            raise MethodNotAllowed(
                f"{method} is not allowed on {shown}; use {', '.join(allowed)}",
                headers={"Allow": ", ".join(allowed)},
            )
        raise RouteNotFound(f"there is no endpoint at {shown}; {self.listing()}")

    def _by_pattern(self, path: str) -> list[Match]:
        found = []
        for endpoint in self.all:
            for pattern in endpoint._patterns:
                matched = pattern.match(path)
                if matched:
                    found.append(Match(endpoint, matched.groupdict()))
                    break
        return found

    def listing(self) -> str:
        lines = [f"{' '.join(e.methods)} {e.path}" for e in self.all if e.documented and e.methods]
        return "the endpoints are: " + ", ".join(lines)

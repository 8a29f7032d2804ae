"""Model names to deployments: exact names, wildcard families, groups and fallbacks."""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from app.config import ConfigError, GatewayConfig, ModelEntry
from app.errors import ModelNotFound
from app.providers import build_provider
from app.providers.base import Provider, ProviderContext
from app.quoting import shortened

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deployment:
    """One model entry with its provider built."""

    entry: ModelEntry
    provider: Provider
    id: str  # stable across workers and replicas that share a config

    def upstream_model(self, requested: str) -> str:
        if self.entry.upstream_model:
            return self.entry.upstream_model
        if self.entry.is_wildcard:
            return requested[len(self.entry.name) - 1 :]
        return requested


@dataclass
class Group:
    """Same-named entries: requests rotate across them and fail over in turn."""

    name: str
    entries: list[ModelEntry] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    missing_variables: list[str] = field(default_factory=list)
    _turn: Iterator[int] = field(default_factory=itertools.count)

    def in_turn(self) -> list[Deployment]:
        start = next(self._turn) % len(self.deployments)
        return self.deployments[start:] + self.deployments[:start]

    @functools.cached_property
    def fallbacks(self) -> list[str]:
        names: list[str] = []
        for entry in self.entries:
            names += [n for n in entry.fallbacks if n not in names]
        return names

    @property
    def provider_kind(self) -> str:
        return self.entries[0].provider


@dataclass(frozen=True)
class Attempt:
    """One deployment to try, and the model name the upstream is asked for."""

    deployment: Deployment
    upstream_model: str
    variant: str | None = None


class Router:
    """Resolves a requested model to the ordered deployments that may serve it."""

    def __init__(self, config: GatewayConfig, context: ProviderContext) -> None:
        self._groups: dict[str, Group] = {}
        for position, entry in enumerate(config.models):
            group = self._groups.setdefault(entry.name, Group(entry.name))
            group.entries.append(entry)
            # Built even when not served, so that bad options stop the gateway at startup.
            provider = build_provider(entry, context)
            # A key written as ${VAR} that came out empty means "not configured yet", even for
            # providers that can run keyless (a local vLLM has no key; api.openai.com needs one).
            wants_key = provider.capabilities.needs_api_key or bool(entry.api_key_variables)
            if wants_key and not entry.api_key:
                variable = " or ".join(entry.api_key_variables) or "api_key"
                group.missing_variables.append(variable)
                logger.warning("model %r is not served: set %s to enable it", entry.name, variable)
                continue
            group.deployments.append(Deployment(entry, provider, f"{entry.name}#{position}"))
        for group in self._groups.values():
            for name in group.fallbacks:
                if name not in self._groups:
                    raise ConfigError(f"model {group.name!r}: fallback {name!r} is not configured")

    def served(self) -> list[Group]:
        """Groups that can answer, in config order."""
        return [group for group in self._groups.values() if group.deployments]

    def _group_for(self, model: str) -> Group | None:
        if model in self._groups:
            return self._groups[model]
        wildcards = [
            name
            for name in self._groups
            if name.endswith("/*") and model.startswith(name[:-1]) and len(model) > len(name) - 1
        ]
        return self._groups[max(wildcards, key=len)] if wildcards else None

    def resolve(self, model: str) -> list[Attempt]:
        """The deployments to try for `model`, in order: its group, then its fallbacks."""
        group = self._group_for(model)
        if group is None:
            raise ModelNotFound(f"the model {shortened(model)!r} does not exist", param="model")
        if not group.deployments:
            raise ModelNotFound(
                f"the model {shortened(model)!r} is not enabled: set "
                f"{' or '.join(group.missing_variables)} to serve it",
                param="model",
            )
        variant = model[len(group.name) - 1 :] if group.name.endswith("/*") else None
        attempts = [Attempt(d, d.upstream_model(model), variant) for d in group.in_turn()]
        for name in group.fallbacks:
            fallback = self._groups[name]
            if fallback.deployments and fallback is not group:
                attempts += [Attempt(d, d.upstream_model(name)) for d in fallback.in_turn()]
        return attempts

    def owner(self, model: str) -> str | None:
        """The provider kind behind a listed or routable model, if it is served."""
        group = self._group_for(model)
        return group.provider_kind if group and group.deployments else None

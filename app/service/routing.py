"""Model names to deployments: exact names, wildcard families, groups and fallbacks."""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from app.config import ConfigError, GatewayConfig, ModelEntry
from app.config.names import ModelPattern, variant_problem
from app.errors import InvalidRequest, ModelNotFound
from app.errors.quoting import shortened
from app.observe import tracing
from app.providers import PROVIDER_KINDS, ProviderKinds, provider_type
from app.providers.base import Provider, ProviderContext
from app.service.limits import Limit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deployment:
    """One model entry with its provider built."""

    entry: ModelEntry
    provider: Provider
    id: str  # stable across workers and replicas that share a config

    def upstream_model(self, variant: str | None, requested: str) -> str:
        """The model the upstream is asked for: the entry's own, else for a family the
        variant asked for, else the name the client sent."""
        if self.entry.upstream_model:
            return self.entry.upstream_model
        return variant if variant is not None else requested

    def rate(self, cost: int) -> Limit:
        """This deployment's `rpm`, for a request counting `cost` requests."""
        return Limit(self.id, self.entry.rpm, f"the model {self.entry.name!r}", cost)


@dataclass
class Group:
    """Same-named entries: requests rotate across them and fail over in turn."""

    pattern: ModelPattern
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
    def name(self) -> str:
        return self.pattern.text

    @property
    def provider_kind(self) -> str:
        return self.entries[0].provider

    def members(self) -> str:
        """Its entries as an operator wrote them: provider, address, upstream model."""
        return "; ".join(_described(entry) for entry in self.entries)


def _described(entry: ModelEntry) -> str:
    text = entry.provider + (f" at {entry.base_url}" if entry.base_url else "")
    return text + (f" as {entry.upstream_model}" if entry.upstream_model else "")


@dataclass(frozen=True)
class Attempt:
    """One deployment to try, and the model name the upstream is asked for."""

    deployment: Deployment
    upstream_model: str
    variant: str | None = None

    def traced(self) -> tracing.Traced:
        """The span of one try at it (one that does nothing while traces are off)."""
        entry = self.deployment.entry
        return tracing.upstream_attempt(entry.provider, self.upstream_model, self.deployment.id)


class Router:
    """Resolves a requested model to the ordered deployments that may serve it."""

    def __init__(
        self,
        config: GatewayConfig,
        context: ProviderContext,
        kinds: ProviderKinds = PROVIDER_KINDS,
    ) -> None:
        self._groups: dict[str, Group] = {}
        for position, entry in enumerate(config.models):
            group = self._groups.setdefault(entry.name, Group(entry.pattern))
            group.entries.append(entry)
            # Built even when not served, so that bad options stop the gateway at startup.
            provider = provider_type(entry, kinds)(entry, context)
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
            if len(group.entries) > 1:
                logger.info(
                    "model %r is a group of %d entries that share its requests and fail over "
                    "in turn: %s",
                    group.name,
                    len(group.entries),
                    group.members(),
                )
            for name in group.fallbacks:
                if name not in self._groups:
                    raise ConfigError(f"model {group.name!r}: fallback {name!r} is not configured")
        # The most specific family first: a longer prefix beats a shorter one.
        families = [g for g in self._groups.values() if g.pattern.is_family]
        self._families = sorted(
            ((g.pattern.prefix, g) for g in families), key=lambda found: -len(found[0])
        )

    def groups(self) -> list[Group]:
        """Every configured name, served or not, in config order."""
        return list(self._groups.values())

    def served(self) -> list[Group]:
        """Groups that can answer, in config order."""
        return [group for group in self._groups.values() if group.deployments]

    def _group_for(self, model: str) -> Group | None:
        group = self._groups.get(model)
        if group is not None and not group.pattern.is_family:
            return group
        for prefix, family in self._families:
            if len(model) > len(prefix) and model.startswith(prefix):
                return family
        return None

    def permits(self, allowed: Sequence[str], model: str) -> bool:
        """Whether a key limited to `allowed` (names and `prefix/*` families) may use `model`,
        decided by the route `model` takes: a name allows its own route, exact or family,
        never another entry whose name a family pattern happens to match (a key for `team/*`
        may not use a separate entry `team/secret`). A family pattern that is no configured
        name covers every name it matches, and an exact member of a family may be named."""
        group = self._group_for(model)
        for name in allowed:
            if group is not None and name == group.name:
                return True
            pattern = ModelPattern(name)
            if not pattern.is_family and name == model:
                return True
            if pattern.is_family and name not in self._groups and pattern.matches(model):
                return True
        return False

    def resolve(self, model: str) -> list[Attempt]:
        """The deployments to try for `model`, in order: its group, then its fallbacks."""
        group = self._group_for(model)
        if group is None:
            raise ModelNotFound(f"the model {shortened(model)!r} does not exist", param="model")
        _check_variant(group, model)
        if not group.deployments:
            raise ModelNotFound(
                f"the model {shortened(model)!r} is not enabled: set "
                f"{' or '.join(group.missing_variables)} to serve it",
                param="model",
            )
        variant = group.pattern.variant(model)
        attempts = [Attempt(d, d.upstream_model(variant, model), variant) for d in group.in_turn()]
        for name in group.fallbacks:
            fallback = self._groups[name]
            if not fallback.deployments or fallback is group:
                continue
            # A family takes over the variant asked for (or the whole name): never its `*`.
            wanted = (variant or model) if fallback.pattern.is_family else None
            attempts += [
                Attempt(d, d.upstream_model(wanted, name), wanted) for d in fallback.in_turn()
            ]
        return attempts

    def label(self, model: str) -> str:
        """How metrics name `model`: the configured name or pattern that routes it, or
        `unknown` (clients can invent names without end; configured ones are few)."""
        group = self._group_for(model)
        return group.name if group is not None else "unknown"

    def owner(self, model: str) -> str | None:
        """The provider kind behind a listed or routable model, if it is served."""
        group = self._group_for(model)
        if group is None or not group.deployments:
            return None
        variant = group.pattern.variant(model)
        return None if variant is not None and variant_problem(variant) else group.provider_kind


def _check_variant(group: Group, model: str) -> None:
    """400 for a variant no upstream should be asked for (see `variant_problem`)."""
    variant = group.pattern.variant(model)
    problem = variant_problem(variant) if variant is not None else None
    if problem is not None:
        raise InvalidRequest(
            f"the model {shortened(model)!r} names a variant of {group.name!r} with {problem}",
            param="model",
        )

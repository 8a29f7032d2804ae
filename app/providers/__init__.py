"""The closed set of provider kinds and how each is built from a model entry."""

from __future__ import annotations

from collections.abc import Mapping

from app.config import ConfigError, ModelEntry
from app.providers.aimlapi import AIMLAPI
from app.providers.base import ProviderType
from app.providers.inspect import Inspect
from app.providers.masterpiecex import MasterpieceX
from app.providers.openai_compat import OpenAICompatible
from app.providers.predictionguard import PredictionGuard
from app.providers.takeoff import Takeoff
from app.providers.vlmrun import VLMRun

ProviderKinds = Mapping[str, ProviderType]

PROVIDER_KINDS: ProviderKinds = {
    "openai": OpenAICompatible,
    "aimlapi": AIMLAPI,
    "inspect": Inspect,
    "masterpiecex": MasterpieceX,
    "vlmrun": VLMRun,
    "predictionguard": PredictionGuard,
    "takeoff": Takeoff,
}


def provider_type(entry: ModelEntry, kinds: ProviderKinds = PROVIDER_KINDS) -> ProviderType:
    """The class that serves `entry`'s provider, from `kinds` (tests hand the router fakes)."""
    try:
        return kinds[entry.provider]
    except KeyError:
        raise ConfigError(
            f"model {entry.name!r}: provider {entry.provider!r} is not available in this version"
        ) from None

"""Fake provider upstreams, one module each (Masterpiece X, VLM Run, Takeoff, Prediction Guard),
and a web host for client images: small Starlette apps that speak the provider's wire format,
answer as scripted and record every request (and every poll of a job)."""

from tests.e2e.fakes.images import ImageHost
from tests.e2e.providers.fakes.masterpiecex import FakeMasterpieceX, MPXJob, StoredObject
from tests.e2e.providers.fakes.predictionguard import (
    PG_FORBIDDEN,
    PG_NO_VISION_STREAMING,
    FakePredictionGuard,
    PGReply,
)
from tests.e2e.providers.fakes.recording import Poll, Received, RecordingFake
from tests.e2e.providers.fakes.takeoff import EOS, TAKEOFF_NOT_READY, FakeTakeoff, TakeoffReply
from tests.e2e.providers.fakes.vlmrun import DOMAINS, FakeVLMRun, VLMPrediction

__all__ = [
    "DOMAINS",
    "EOS",
    "PG_FORBIDDEN",
    "PG_NO_VISION_STREAMING",
    "TAKEOFF_NOT_READY",
    "FakeMasterpieceX",
    "FakePredictionGuard",
    "FakeTakeoff",
    "FakeVLMRun",
    "ImageHost",
    "MPXJob",
    "PGReply",
    "Poll",
    "Received",
    "RecordingFake",
    "StoredObject",
    "TakeoffReply",
    "VLMPrediction",
]

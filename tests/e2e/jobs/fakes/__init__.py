"""Fake Masterpiece X and VLM Run upstreams, and a web host for
client images: small Starlette apps that answer as scripted and record every request and poll."""

from tests.e2e.fakes.images import ImageHost
from tests.e2e.jobs.fakes.masterpiecex import FakeMasterpieceX, MPXJob, StoredObject
from tests.e2e.jobs.fakes.recording import Poll, Received, RecordingFake
from tests.e2e.jobs.fakes.vlmrun import DOMAINS, FakeVLMRun, VLMPrediction

__all__ = [
    "DOMAINS",
    "FakeMasterpieceX",
    "FakeVLMRun",
    "ImageHost",
    "MPXJob",
    "Poll",
    "Received",
    "RecordingFake",
    "StoredObject",
    "VLMPrediction",
]

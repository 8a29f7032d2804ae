"""A fake VLM Run: `/image/generate` answered at once or as a prediction
polled at `/predictions/{id}`, and the domains it offers."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.e2e.providers.fakes.recording import (
    Poll,
    RecordingFake,
    error_reason,
    is_http,
    is_text,
    next_scripted,
    now_iso,
)


@dataclass
class VLMPrediction:
    """How one VLM Run prediction goes: `initial` in the `/image/generate` reply, then
    `statuses` over successive `/predictions/{id}` polls (the last repeats). `completed` carries
    `response`; `failed` carries `failure` in `usage.message`. `poll_body`, when set, answers
    every poll with `200` and that body, as an upstream that garbles its replies would."""

    initial: str = "completed"
    statuses: list[str] = field(default_factory=lambda: ["completed"])
    response: dict[str, Any] = field(
        default_factory=lambda: {"caption": "A red square.", "tags": ["red", "square"]}
    )
    credits_used: int = 100
    failure: str = "the prediction failed"
    poll_errors: dict[int, int] = field(default_factory=dict)
    submit_delay_s: float = 0.0
    poll_body: bytes | None = None


@dataclass
class _VLMRun:
    script: VLMPrediction
    domain: str
    created_at: str
    polls: int = 0


DOMAINS = ("document.invoice", "document.receipt", "image.caption", "image.object-detection")


class FakeVLMRun(RecordingFake):
    """`POST /v1/image/generate`, `GET /v1/predictions/{id}` and `GET /v1/domains`."""

    def __init__(self, api_key: str) -> None:
        super().__init__(
            api_key,
            [
                Route("/v1/image/generate", self._generate, methods=["POST"]),
                Route("/v1/predictions/{prediction_id}", self._prediction, methods=["GET"]),
                Route("/v1/domains", self._domains, methods=["GET"]),
            ],
        )
        self.predictions: dict[str, _VLMRun] = {}
        self._script: list[VLMPrediction] = []

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def script(self, *predictions: VLMPrediction) -> None:
        """The next predictions go as `predictions` say, in turn (the last one repeats)."""
        self._script = list(predictions)

    def reset(self) -> None:
        super().reset()
        self.predictions.clear()
        self._script = []

    async def _generate(self, request: Request) -> Response:
        received = await self.record(request)
        if self.key_refused(received):
            return _detail(401, "Invalid API key")
        body = received.json
        problem = _generate_problem(body)
        if problem:
            return _detail(400, problem)
        script = next_scripted(self._script) or VLMPrediction()
        await anyio.sleep(script.submit_delay_s)
        prediction_id = secrets.token_hex(12)
        run = _VLMRun(script, body["domain"], now_iso())
        self.predictions[prediction_id] = run
        return JSONResponse(_prediction(prediction_id, run, script.initial), status_code=201)

    async def _prediction(self, request: Request) -> Response:
        received = await self.record(request)
        if self.key_refused(received):
            return _detail(401, "Invalid API key")
        prediction_id = request.path_params["prediction_id"]
        run = self.predictions.get(prediction_id)
        if run is None:
            return _detail(404, "Prediction not found")
        run.polls += 1
        error_status = run.script.poll_errors.get(run.polls)
        if error_status:
            self.polls.append(Poll(prediction_id, received.at, str(error_status)))
            return _detail(error_status, error_reason(error_status, "Prediction not found"))
        if run.script.poll_body is not None:
            self.polls.append(Poll(prediction_id, received.at, "malformed"))
            return Response(run.script.poll_body, media_type="application/json")
        statuses = run.script.statuses
        status = statuses[min(run.polls, len(statuses)) - 1]
        self.polls.append(Poll(prediction_id, received.at, status))
        return JSONResponse(_prediction(prediction_id, run, status))

    async def _domains(self, request: Request) -> Response:
        received = await self.record(request)
        if self.key_refused(received):
            return _detail(401, "Invalid API key")
        return JSONResponse([{"domain": domain} for domain in DOMAINS])


def _generate_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if body.get("model") != "vlm-1":
        return f"unknown model {body.get('model')!r}"
    if not is_text(body.get("domain")):
        return "domain is required"
    if body["domain"] not in DOMAINS:
        return f"unknown domain {body['domain']!r}"
    images = body.get("images")
    if not isinstance(images, list) or not images or not all(is_text(i) for i in images):
        return "images must be a non-empty list of data URIs or URLs"
    inline = [image.startswith("data:") for image in images]
    if any(inline) and not all(inline):
        return "images must be all data URIs or all URLs, not both"
    if not all(inline) and not all(is_http(image) for image in images):
        return "image URLs must start with http"
    if not isinstance(body.get("config", {}), dict) or not isinstance(body.get("batch"), bool):
        return "config must be an object and batch a boolean"
    return None


def _prediction(prediction_id: str, run: _VLMRun, status: str) -> dict[str, Any]:
    completed = status == "completed"
    return {
        "id": prediction_id,
        "created_at": run.created_at,
        "completed_at": now_iso() if completed else None,
        "status": status,
        "domain": run.domain,
        "response": run.script.response if completed else None,
        "usage": {
            "elements_processed": 1 if completed else None,
            "element_type": "image",
            "credits_used": run.script.credits_used if completed else None,
            "steps": None,
            "message": run.script.failure if status == "failed" else None,
            "duration_seconds": 1 if completed else 0,
        },
    }


def _detail(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)

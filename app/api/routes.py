"""Every public endpoint, listed once: the front layer serves them and `/openapi.json`
describes them."""

from __future__ import annotations

from starlette.responses import Response

from app import __version__
from app.api import chat, docs, health, models, playground, responses
from app.api.endpoints import Endpoint, Endpoints, Incoming
from app.api.openapi import openapi_document
from app.api.replies import json_reply
from app.responses.objects import DeletedResponse
from app.responses.objects import Response as ResponseObject
from app.responses.schemas import ResponsesRequest
from app.wire.schemas import ChatCompletion, ChatCompletionRequest, Model, ModelList

TITLE = "vision-gateway"


def build_endpoints() -> Endpoints:
    endpoints: list[Endpoint] = [
        Endpoint(
            "/v1/chat/completions",
            ("POST",),
            chat.create_chat_completion,
            "Create a chat completion (images as `image_url` parts); `stream: true` for SSE",
            aliases=("/chat/completions",),
            api="chat",
            reads_body=True,
            request_model=ChatCompletionRequest,
            response_model=ChatCompletion,
        ),
        Endpoint(
            "/v1/responses",
            ("POST",),
            responses.create_response,
            "Create a response (images as `input_image` parts); `stream: true` for SSE events",
            aliases=("/responses",),
            api="responses",
            reads_body=True,
            request_model=ResponsesRequest,
            response_model=ResponseObject,
        ),
        Endpoint(
            "/v1/responses/{response_id}",
            ("GET",),
            responses.retrieve_response,
            "Retrieve a stored response",
            aliases=("/responses/{response_id}",),
            response_model=ResponseObject,
        ),
        Endpoint(
            "/v1/responses/{response_id}",
            ("DELETE",),
            responses.delete_response,
            "Delete a stored response",
            aliases=("/responses/{response_id}",),
            response_model=DeletedResponse,
        ),
        Endpoint(
            "/v1/responses/{response_id}/input_items",
            ("GET",),
            responses.list_input_items,
            "List a stored response's input items",
            aliases=("/responses/{response_id}/input_items",),
        ),
        Endpoint(
            "/v1/models",
            ("GET",),
            models.list_models,
            "List the served models",
            aliases=("/models",),
            response_model=ModelList,
        ),
        Endpoint(
            "/v1/models/{model_id:path}",
            ("GET",),
            models.retrieve_model,
            "Retrieve one served model",
            aliases=("/models/{model_id:path}",),
            response_model=Model,
        ),
        Endpoint("/health", ("GET",), health.health, "Liveness", needs_key=False),
        Endpoint("/ready", ("GET",), health.ready, "Readiness", needs_key=False),
        Endpoint("/metrics", ("GET",), health.metrics, "Prometheus metrics", needs_key=False),
        Endpoint(
            "/playground", ("GET",), playground.playground, "The playground page", needs_key=False
        ),
        Endpoint(
            "/playground/models",
            ("GET",),
            playground.model_hints,
            "What the playground needs to know of each model",
            documented=False,
        ),
        Endpoint(
            "/playground/pages",
            ("POST",),
            playground.document_pages,
            "A document's pages as the playground shows them",
            reads_body=True,
            documented=False,
        ),
        Endpoint(
            "/playground/{name}",
            ("GET",),
            playground.asset,
            "The playground's files",
            needs_key=False,
            documented=False,
        ),
    ]
    document = openapi_document(TITLE, __version__, endpoints)

    async def openapi(_: Incoming) -> Response:
        return json_reply(document)

    async def docs_page(_: Incoming) -> Response:
        return docs.docs_page(f"{TITLE} API")

    endpoints += [
        Endpoint("/openapi.json", ("GET",), openapi, "This API, described", needs_key=False),
        Endpoint("/docs", ("GET",), docs_page, "This API, to read and try", needs_key=False),
        Endpoint(
            "/docs/{name}",
            ("GET",),
            docs.asset,
            "The docs page's files",
            needs_key=False,
            documented=False,
        ),
    ]
    return Endpoints(endpoints)

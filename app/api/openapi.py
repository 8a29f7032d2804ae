"""The OpenAPI document of the public endpoints, built from their table and wire models."""

from __future__ import annotations

import re

from pydantic import BaseModel

from app.api.endpoints import Endpoint

_REF = "#/components/schemas/{model}"
_CONVERTOR = re.compile(r"\{(\w+):\w+\}")


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorEnvelope(BaseModel):
    """Every error: OpenAI's envelope."""

    error: ErrorBody


def openapi_document(title: str, version: str, endpoints: list[Endpoint]) -> dict[str, object]:
    schemas: dict[str, object] = {}
    paths: dict[str, dict[str, object]] = {}
    for endpoint in endpoints:
        if not endpoint.documented:
            continue
        path = _CONVERTOR.sub(r"{\1}", endpoint.path)
        for method in endpoint.methods:
            paths.setdefault(path, {})[method.lower()] = _operation(endpoint, path, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation(endpoint: Endpoint, path: str, schemas: dict[str, object]) -> dict[str, object]:
    operation: dict[str, object] = {
        "summary": endpoint.summary,
        "operationId": endpoint.handler.__name__,
        "responses": {
            "200": _content(endpoint.response_model, schemas, "Success"),
            "default": _content(ErrorEnvelope, schemas, "An error, in OpenAI's envelope"),
        },
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{(\w+)\}", path)
    ]
    if parameters:
        operation["parameters"] = parameters
    if endpoint.request_model is not None:
        body = _content(endpoint.request_model, schemas, "")
        operation["requestBody"] = {"required": True, "content": body["content"]}
    if endpoint.needs_key:
        operation["security"] = [{"bearer": []}]
    return operation


def _content(
    model: type[BaseModel] | None, schemas: dict[str, object], description: str
) -> dict[str, object]:
    if model is None:
        return {"description": description}
    schema = model.model_json_schema(ref_template=_REF)
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    ref = {"$ref": _REF.format(model=model.__name__)}
    return {"description": description, "content": {"application/json": {"schema": ref}}}

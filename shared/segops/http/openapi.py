"""OpenAPI 3.1 built from the route declarations of every HTTP function."""

from __future__ import annotations

import re
from typing import Any

from pydantic import AliasChoices, BaseModel
from pydantic.json_schema import models_json_schema

from segops.http.routes import Route, Router
from segops.ids import ID_MAX, ID_MIN

_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
_SECURITY: dict[str, dict[str, list[str]]] = {
    "jwt": {"bearerAuth": []},
    "api_key": {"apiKeyAuth": []},
    "write_key": {"writeKeyAuth": []},
}


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params = []
    for converter, name in _PARAM.findall(rule):
        schema: dict[str, Any] = (
            {"type": "integer", "format": "int64", "minimum": ID_MIN, "maximum": ID_MAX}
            if converter == "int"
            else {"type": "string"}
        )
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return _PARAM.sub(lambda m: "{" + m.group(2) + "}", rule), params


def _query_params(model: type[BaseModel], defs: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    defs.update(schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    params = [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]
    # A parameter the server also takes by another name (`AliasChoices`, e.g. `type` for `segment_type`).
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices) and name in schema.get("properties", {}):
            for other in alias.choices:
                if isinstance(other, str) and other != name:
                    spelled = {**schema["properties"][name], "description": f"The same as `{name}`."}
                    params.append({"name": other, "in": "query", "required": False, "schema": spelled})
    return params


def build_openapi(functions: dict[str, list[Router]]) -> dict[str, Any]:
    routes: list[tuple[str, Route]] = [
        (fn, r) for fn, routers in functions.items() for rt in routers for r in rt.routes
    ]
    models: set[type[BaseModel]] = set()
    for _, route in routes:
        models.update(m for m in (route.body or route.doc_body, route.response) if m is not None)
    ordered = sorted(models, key=lambda m: (m.__module__, m.__name__))
    keys, top = models_json_schema([(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    # Two models may share a class name (e.g. `Queued` in two domains): pydantic then names their
    # schemas apart, so every reference uses the name it chose, never `__name__`.
    refs = {model: str(keys[(model, "validation")]["$ref"]) for model in ordered}
    error_schema = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "object"},
                },
            }
        },
    }
    schemas["Error"] = error_schema
    paths: dict[str, dict[str, Any]] = {}
    for function, route in routes:
        path, params = _path(route.path)
        operation: dict[str, Any] = {
            "operationId": f"{function}_{route.handler.__name__}",
            "summary": route.summary,
            "tags": [function],
            "x-segops-function": function,
            "responses": {
                str(route.status): {"description": "success"},
                "default": {
                    "description": "error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        }
        if route.response is not None and route.status != 204:
            content = {"application/json": {"schema": {"$ref": refs[route.response]}}}
            operation["responses"][str(route.status)]["content"] = content
            for status in route.also_status:
                operation["responses"][str(status)] = {"description": "the same body", "content": content}
        for media in route.also_media:
            success = operation["responses"][str(route.status)]
            success.setdefault("content", {})[media] = {"schema": {"type": "string"}}
        if route.query is not None:
            params = params + _query_params(route.query, schemas)
        if params:
            operation["parameters"] = params
        body = route.body or route.doc_body
        if body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": refs[body]}}},
            }
        operation["security"] = [_SECURITY[a] for a in route.auth] if route.auth else []
        if route.role:
            operation["x-segops-min-role"] = route.role
        if route.browser:
            # Publishable keys (pk_live_) are accepted here, and CORS is answered (docs/ingestion.md).
            operation["x-segops-browser"] = True
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SegOps API",
            "version": "1.0.0",
            "description": "Customer segmentation: ingestion, segments, membership, sandbox, connectors.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKeyAuth": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`ApiKey sk_live_...`; publishable `ApiKey pk_live_...` on x-segops-browser ones",
                },
                "writeKeyAuth": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "Segment-compatible endpoints: the API key as the user name, empty password",
                },
            },
        },
    }

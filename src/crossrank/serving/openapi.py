"""A small hand-written OpenAPI 3.1 description of the server (served at /openapi.json, shown at /docs)."""
from __future__ import annotations

import json


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


_DOCUMENT = {"oneOf": [{"type": "string"}, {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}]}
_ERROR = {"description": "refused", "content": {"application/json": {"schema": _ref("Error")}}}

SCHEMAS = {
    "CohereRerankRequest": {
        "type": "object", "title": "Cohere v1/v2 and Jina request",
        "required": ["query", "documents"],
        "properties": {
            "model": {"type": "string", "description": "accepted and echoed; the server scores with its one model"},
            "query": {"type": "string"},
            "documents": {"type": "array", "items": _DOCUMENT},
            "top_n": {"type": "integer", "minimum": 1},
            "return_documents": {"type": "boolean", "default": False},
            "max_tokens_per_doc": {"type": "integer", "minimum": 1, "description": "cut each document to this many tokens (before windows, when the server runs with --long-passages window)"},
        },
    },
    "InfinityRerankRequest": {
        "type": "object", "title": "infinity request (chosen by a `raw_scores` key or the /infinity/rerank path)",
        "required": ["query", "documents"],
        "properties": {
            "model": {"type": "string"}, "query": {"type": "string"},
            "documents": {"type": "array", "items": {"type": "string"}},
            "top_n": {"type": "integer", "minimum": 1},
            "return_documents": {"type": "boolean", "default": False},
            "raw_scores": {"type": "boolean", "default": False, "description": "logits instead of sigmoid(logits)"},
        },
    },
    "TeiRerankRequest": {
        "type": "object", "title": "text-embeddings-inference request (chosen by a `texts` key)",
        "required": ["query", "texts"],
        "properties": {
            "query": {"type": "string"}, "texts": {"type": "array", "items": {"type": "string"}},
            "raw_scores": {"type": "boolean", "default": False},
            "return_text": {"type": "boolean", "default": False},
            "truncate": {"type": "boolean", "default": True, "description": "false: refuse (413) pairs over max_length"},
            "truncation_direction": {"type": "string", "enum": ["Right"]},
        },
    },
    "CohereRerankResponse": {
        "type": "object", "required": ["results"],
        "properties": {
            "id": {"type": "string"},
            "results": {"type": "array", "items": {"type": "object", "required": ["index", "relevance_score"], "properties": {
                "index": {"type": "integer"}, "relevance_score": {"type": "number"},
                "document": {"type": "object", "properties": {"text": {"type": "string"}}}}}},
            "meta": {"type": "object"}, "model": {"type": "string"},
            "usage": {"type": "object", "properties": {"total_tokens": {"type": "integer"}}},
        },
    },
    "InfinityRerankResponse": {
        "type": "object", "required": ["object", "results", "model", "usage"],
        "properties": {
            "object": {"const": "rerank"},
            "results": {"type": "array", "items": {"type": "object", "properties": {
                "relevance_score": {"type": "number"}, "index": {"type": "integer"}, "document": {"type": ["string", "null"]}}}},
            "model": {"type": "string"}, "id": {"type": "string"}, "created": {"type": "integer"},
            "usage": {"type": "object", "properties": {"prompt_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"}}},
        },
    },
    "TeiRerankResponse": {
        "type": "array", "items": {"type": "object", "required": ["index", "score"], "properties": {
            "index": {"type": "integer"}, "score": {"type": "number"}, "text": {"type": "string"}}},
    },
    "Error": {
        "type": "object", "required": ["error", "detail"],
        "properties": {"error": {"type": "string", "description": "a short code, e.g. invalid_request"}, "detail": {"type": "string"}},
    },
}

_RERANK = {
    "summary": "Rerank documents for a query (Cohere, Jina, infinity or TEI request shape; answered in the same shape)",
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
        _ref("CohereRerankRequest"), _ref("InfinityRerankRequest"), _ref("TeiRerankRequest")]}}}},
    "responses": {
        "200": {"description": "documents best first", "content": {"application/json": {"schema": {"oneOf": [
            _ref("CohereRerankResponse"), _ref("InfinityRerankResponse"), _ref("TeiRerankResponse")]}}}},
        "400": _ERROR, "401": _ERROR, "413": _ERROR, "429": _ERROR, "504": _ERROR,
    },
    "security": [{"bearer": []}],
}


def openapi_spec(title: str, version: str) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": {
            "/rerank": {"post": _RERANK},
            "/v1/rerank": {"post": _RERANK},
            "/v2/rerank": {"post": _RERANK},
            "/infinity/rerank": {"post": _RERANK},
            "/health": {"get": {"summary": "liveness (never needs the API key)", "responses": {"200": {"description": "ok"}}}},
            "/info": {"get": {"summary": "model and limits", "responses": {"200": {"description": "ok"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics (text format)", "responses": {"200": {"description": "ok"}}}},
        },
        "components": {
            "schemas": json.loads(json.dumps(SCHEMAS)),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


DOCS_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>crossrank rerank server</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "openapi.json", dom_id: "#ui"});</script>
<noscript>The API description is at <a href="openapi.json">openapi.json</a>.</noscript>
</body></html>
"""

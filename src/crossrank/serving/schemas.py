"""Request shapes of the rerank APIs users already call, and answers in the same shape.

Shape detection (the first rule that matches wins):

1. the body has a `texts` key -> **TEI** (text-embeddings-inference):
   `{query, texts, raw_scores?, return_text?, truncate?}` -> `[{index, score, text?}]`;
2. the path is `/infinity/rerank`, or the body has a `raw_scores` key -> **infinity**:
   `{query, documents, top_n?, return_documents?, raw_scores?}` ->
   `{object: "rerank", results: [{relevance_score, index, document}], model, usage, id, created}`
   (documents come back as plain strings, as infinity does);
3. otherwise -> **Cohere v1/v2 and Jina**:
   `{model?, query, documents (strings or {text}), top_n?, return_documents?, max_tokens_per_doc?}` ->
   `{id, results: [{index, relevance_score, document?: {text}}], meta, model, usage}`
   (`meta.api_version.version` is "2" on `/v2/rerank`, else "1"; `return_documents`
   defaults to false, as in Cohere).

Scores are sigmoid(logit) unless `raw_scores` is true; results are sorted best first, equal
scores keeping input order. Nothing here imports the web framework.

Long documents. `max_tokens_per_doc` means what it means to Cohere (v2 default 4096, "long
documents will be automatically truncated to the specified number of tokens"): each document is
cut to that many of the model's tokens, in text, before anything else; the official SDK omits
the field unless the caller sets it. What happens next to a document that does not fit beside
the query in the model's max_length is the server's setting (`ServerConfig.long_passages`,
`crossrank serve --long-passages`): "truncate" (default) scores its start; "window" scores
overlapping windows of what fits (stride half a window) and answers the best window's score,
as Cohere does with its chunks, so `max_tokens_per_doc` then bounds how many windows a document
costs. `usage`/`meta.tokens` count the tokens the model ran (all windows).
"""
from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

COHERE, INFINITY, TEI = "cohere", "infinity", "tei"


class RequestError(Exception):
    """A request the server refuses: answered as `{"error": code, "detail": detail}` with `status`."""

    def __init__(self, status: int, error: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": self.error, "detail": self.detail}


def invalid(detail: str) -> RequestError:
    return RequestError(400, "invalid_request", detail)


@dataclass
class RerankRequest:
    """One parsed rerank request, whatever shape it came in."""

    format: str  # COHERE, INFINITY or TEI
    query: str
    documents: list[str]
    top_n: int | None = None
    return_documents: bool = False
    raw_scores: bool = False
    max_tokens_per_doc: int | None = None
    truncate: bool = True  # TEI `truncate: false` refuses pairs longer than the model's max_length
    api_version: str = "1"
    model: str | None = None


def detect_format(body: dict, path: str) -> str:
    """Which API a request body speaks; see the module docstring for the rule."""
    if "texts" in body:
        if "documents" in body:
            raise invalid("give either `documents` (Cohere, Jina, infinity) or `texts` (TEI), not both")
        return TEI
    if path.rstrip("/").endswith("/infinity/rerank") or "raw_scores" in body:
        return INFINITY
    return COHERE


def parse_request(body: Any, path: str, *, max_documents: int, max_text_chars: int) -> RerankRequest:
    """Check a decoded JSON body and turn it into a RerankRequest; raises RequestError (400)."""
    if not isinstance(body, dict):
        raise invalid(f"the request body must be a JSON object, but got {_json_type(body)}")
    fmt = detect_format(body, path)
    query = body.get("query")
    if not isinstance(query, str):
        raise invalid(f"`query` must be a string, but got {_json_type(query)}")
    if not query.strip():
        raise invalid("`query` must not be empty")
    if len(query) > max_text_chars:
        raise invalid(f"`query` has {len(query)} characters; the limit is {max_text_chars}")
    check_unicode(query, "query")
    key = "texts" if fmt == TEI else "documents"
    documents = _documents(body.get(key), key, fmt, max_documents, max_text_chars)
    model = _optional(body, "model", str)
    if fmt == TEI:
        direction = _optional(body, "truncation_direction", str)
        if direction is not None and direction.lower() != "right":
            raise invalid(f"`truncation_direction` {direction!r} is not supported; passages are cut at their end ('Right')")
        truncate = _optional(body, "truncate", bool)
        return RerankRequest(
            TEI, query, documents,
            return_documents=bool(_optional(body, "return_text", bool)),
            raw_scores=bool(_optional(body, "raw_scores", bool)),
            truncate=True if truncate is None else truncate,
            model=model,
        )
    top_n = _optional(body, "top_n", int)
    if top_n is not None and top_n < 1:
        raise invalid(f"`top_n` must be >= 1, but got {top_n}")
    max_tokens = _optional(body, "max_tokens_per_doc", int)
    if max_tokens is not None and max_tokens < 1:
        raise invalid(f"`max_tokens_per_doc` must be >= 1, but got {max_tokens}")
    return RerankRequest(
        fmt, query, documents,
        top_n=top_n,
        return_documents=bool(_optional(body, "return_documents", bool)),
        raw_scores=bool(_optional(body, "raw_scores", bool)),
        max_tokens_per_doc=max_tokens,
        api_version="2" if "/v2/" in path else "1",
        model=model,
    )


def _documents(value: Any, key: str, fmt: str, max_documents: int, max_text_chars: int) -> list[str]:
    if value is None:
        raise invalid(f"`{key}` is required: a list of strings")
    if not isinstance(value, list):
        raise invalid(f"`{key}` must be a list, but got {_json_type(value)}")
    if not value:
        raise invalid(f"`{key}` must not be empty")
    if len(value) > max_documents:
        raise invalid(f"`{key}` has {len(value)} items; the limit is {max_documents} per request")
    objects_allowed = fmt == COHERE  # Cohere and Jina also take {"text": ...} objects
    out = []
    for i, doc in enumerate(value):
        if objects_allowed and isinstance(doc, dict):
            doc = doc.get("text")
            if not isinstance(doc, str):
                raise invalid(f"`{key}[{i}]` is an object without a string `text` field")
        elif not isinstance(doc, str):
            kinds = "a string or an object with a `text` string" if objects_allowed else "a string"
            raise invalid(f"`{key}[{i}]` must be {kinds}, but got {_json_type(doc)}")
        if len(doc) > max_text_chars:
            raise invalid(f"`{key}[{i}]` has {len(doc)} characters; the limit is {max_text_chars}")
        check_unicode(doc, f"{key}[{i}]")
        out.append(doc)
    return out


def check_unicode(text: str, field: str) -> None:
    """JSON may carry a lone surrogate (\\ud800), which is no character: refused, naming the field."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise invalid(f"`{field}` holds a lone surrogate (U+{ord(text[exc.start]):04X} at character {exc.start}): "
                      "not valid Unicode text") from None


def _optional(body: dict, key: str, kind: type):
    """body[key] checked against kind (bool is not an int here); a missing key or null gives None."""
    value = body.get(key)
    if value is None:
        return None
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok and isinstance(value, float) and value.is_integer():
            return int(value)
    else:
        ok = isinstance(value, kind)
    if not ok:
        names = {int: "an integer", bool: "a boolean", str: "a string"}
        raise invalid(f"`{key}` must be {names[kind]}, but got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def ranked(scores: np.ndarray, top_n: int | None) -> np.ndarray:
    """Indices best first (equal scores keep input order), at most top_n of them."""
    order = np.argsort(-scores, kind="stable")
    return order[:top_n] if top_n is not None else order


def build_response(request: RerankRequest, scores: np.ndarray, tokens: int, model_name: str) -> Any:
    """The answer to `request` in its own API's shape; `scores` in input order."""
    order = ranked(scores, request.top_n)
    docs = request.documents
    if request.format == TEI:
        out = []
        for i in order:
            item = {"index": int(i), "score": _float(scores[i])}
            if request.return_documents:
                item["text"] = docs[i]
            out.append(item)
        return out
    if request.format == INFINITY:
        results = [
            {"relevance_score": _float(scores[i]), "index": int(i), "document": docs[i] if request.return_documents else None}
            for i in order
        ]
        return {
            "object": "rerank",
            "results": results,
            "model": request.model or model_name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            "id": f"crossrank-{uuid.uuid4()}",
            "created": int(time.time()),
        }
    results = []
    for i in order:
        item = {"index": int(i), "relevance_score": _float(scores[i])}
        if request.return_documents:
            item["document"] = {"text": docs[i]}
        results.append(item)
    return {
        "id": str(uuid.uuid4()),
        "results": results,
        "meta": {"api_version": {"version": request.api_version}, "tokens": {"input_tokens": tokens, "output_tokens": 0}},
        "model": request.model or model_name,
        "usage": {"total_tokens": tokens},
    }


def _float(x) -> float:
    value = float(x)
    if not math.isfinite(value):  # JSON has no NaN/inf; never expected from a sane model
        raise RequestError(500, "internal_error", "the model produced a non-finite score")
    return value

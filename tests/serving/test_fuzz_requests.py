"""Property-based tests of the server's request parsing: any JSON body (the keys the API knows, with
values of any JSON type, lone surrogates included) gives a request or a 400 naming the problem;
never another exception (which the server would answer with a 500)."""
from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from crossrank.serving.schemas import RequestError, parse_request

EXAMPLES = int(os.environ.get("CROSSRANK_FUZZ_EXAMPLES", "200"))
LIMITS = {"max_documents": 5, "max_text_chars": 50}
KEYS = ["query", "documents", "texts", "top_n", "return_documents", "raw_scores", "return_text", "truncate", "truncation_direction",
        "max_tokens_per_doc", "model", "rank_fields", "max_chunks_per_doc"]
TEXT = st.text(max_size=8) | st.sampled_from(["\ud800", "q\udfff", "", " ", "x" * 60])
JSON = st.recursive(st.none() | st.booleans() | st.integers(-3, 10**12) | st.floats(allow_nan=True) | TEXT,
                    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.sampled_from(["text", "id", "title"]) | TEXT, inner,
                                                                                 max_size=3),
                    max_leaves=12)
BODIES = st.dictionaries(st.sampled_from(KEYS), JSON, max_size=6) | JSON
PATHS = st.sampled_from(["/rerank", "/v1/rerank", "/v2/rerank", "/infinity/rerank"])


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True)
@given(BODIES, PATHS)
def test_any_body_gives_a_request_or_a_400(body, path):
    try:
        request = parse_request(body, path, **LIMITS)
    except RequestError as exc:
        assert exc.status == 400 and exc.body()["detail"]
        return
    assert isinstance(request.query, str) and request.query.strip()
    request.query.encode("utf-8")  # valid Unicode only
    assert 1 <= len(request.documents) <= LIMITS["max_documents"]
    for doc in request.documents:
        assert isinstance(doc, str) and len(doc) <= LIMITS["max_text_chars"]
        doc.encode("utf-8")


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True)
@given(st.lists(TEXT, min_size=1, max_size=5), TEXT, PATHS)
def test_well_shaped_bodies_are_taken_as_they_are(documents, query, path):
    body = {"query": query, "documents": documents}
    try:
        request = parse_request(body, path, **LIMITS)
    except RequestError as exc:  # refused only for a reason the API states
        texts = [query, *documents]
        assert exc.status == 400
        assert (not query.strip() or not all(_unicode(t) for t in texts)
                or any(len(t) > LIMITS["max_text_chars"] for t in texts)), exc.detail
        return
    assert request.query == query and request.documents == documents


def _unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

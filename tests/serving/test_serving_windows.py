"""The server with `long_passages="window"`: documents scored as windows (MaxP), `max_tokens_per_doc` first, the Cohere SDK."""
from __future__ import annotations

import httpx
import numpy as np
import pytest

from crossrank.serving import ServerConfig

# each word is one token of MiniLM's vocabulary
WORDS = "the river flows past the old stone bridge near the town square".split()
QUERY = "stone bridge"  # 2 tokens: with max_length 24 a window holds 24 - 3 - 2 = 19 document tokens


def doc(n: int, offset: int = 0) -> str:
    return " ".join(WORDS[(i + offset) % len(WORDS)] for i in range(n))


DOCS = [doc(60), doc(5, 3), doc(19, 1), doc(45, 7), ""]


@pytest.fixture(scope="module")
def tiny24(tiny_model_dir):
    from crossrank import CrossEncoder

    return CrossEncoder(tiny_model_dir, max_length=24, device="cpu")


@pytest.fixture(scope="module")
def window_server(start_server, tiny24):
    return start_server(tiny24, long_passages="window", api_key="k")


def post(server, body, path="/v2/rerank"):
    with httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": "Bearer k"}) as c:
        r = c.post(path, json=body)
    assert r.status_code == 200, r.text
    return r.json()


def scores_of(results, n, key="relevance_score", index="index"):
    out = np.full(n, np.nan)
    for item in results:
        out[item[index]] = item[key]
    return out


def test_documents_are_scored_as_windows_with_max(window_server, tiny24):
    body = post(window_server, {"query": QUERY, "documents": DOCS})
    expected = tiny24.predict([(QUERY, d) for d in DOCS], long_passages="window", activation="sigmoid")
    np.testing.assert_allclose(scores_of(body["results"], len(DOCS)), expected, rtol=1e-5, atol=1e-6)
    raw_windows = tiny24.predict([(QUERY, d) for d in DOCS], long_passages="window")
    raw_cut = tiny24.predict([(QUERY, d) for d in DOCS])
    assert np.all(np.abs(raw_windows - raw_cut)[[0, 3]] > 1e-6)  # the long ones changed (a tiny random model: small logits)
    np.testing.assert_allclose(raw_windows[[1, 2, 4]], raw_cut[[1, 2, 4]], atol=1e-6)  # the ones that fit did not
    # usage counts every window the model ran, each with the query and 3 special tokens (5 tokens):
    # 60 tokens -> windows at 0, 9, ..., 45 (5 x 19 + 15 tokens); 45 -> at 0, 9, 18, 27 (3 x 19 + 18); the rest one each
    per_doc = [5 * 19 + 15 + 6 * 5, 5 + 5, 19 + 5, 3 * 19 + 18 + 4 * 5, 0 + 5]
    assert body["usage"]["total_tokens"] == sum(per_doc) == 274
    tei = post(window_server, {"query": QUERY, "texts": DOCS, "truncate": False, "raw_scores": True}, path="/rerank")
    np.testing.assert_allclose(scores_of(tei, len(DOCS), key="score"), tiny24.predict([(QUERY, d) for d in DOCS], long_passages="window"),
                               rtol=1e-5, atol=1e-5)  # nothing is cut, so TEI's truncate: false is not refused


def test_max_tokens_per_doc_cuts_before_the_windows(window_server, tiny24):
    body = post(window_server, {"query": QUERY, "documents": DOCS, "max_tokens_per_doc": 30, "return_documents": True})
    cut = [" ".join(d.split()[:30]) for d in DOCS]
    expected = tiny24.predict([(QUERY, d) for d in cut], long_passages="window", activation="sigmoid")
    np.testing.assert_allclose(scores_of(body["results"], len(DOCS)), expected, rtol=1e-5, atol=1e-6)
    assert [r["document"]["text"] for r in body["results"]] == [DOCS[r["index"]] for r in body["results"]]
    assert body["usage"]["total_tokens"] < post(window_server, {"query": QUERY, "documents": DOCS})["usage"]["total_tokens"]


def test_cohere_sdk_against_a_window_server(window_server, tiny24):
    cohere = pytest.importorskip("cohere")
    client = cohere.ClientV2(base_url=window_server.url, api_key="k")
    plain = client.rerank(model="crossrank", query=QUERY, documents=DOCS)
    expected = tiny24.predict([(QUERY, d) for d in DOCS], long_passages="window", activation="sigmoid")
    got = scores_of([{"index": r.index, "relevance_score": r.relevance_score} for r in plain.results], len(DOCS))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    capped = client.rerank(model="crossrank", query=QUERY, documents=DOCS, max_tokens_per_doc=10, top_n=2)
    cut = tiny24.predict([(QUERY, " ".join(d.split()[:10])) for d in DOCS], long_passages="window", activation="sigmoid")
    assert [r.index for r in capped.results] == np.argsort(-cut, kind="stable")[:2].tolist()


def test_long_passages_setting_is_checked_and_reported(start_server, tiny24):
    with pytest.raises(ValueError, match="long_passages must be 'truncate' or 'window', but got 'windows'"):
        ServerConfig(long_passages="windows")
    server = start_server(tiny24, long_passages="window")
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/info").json()["config"]["long_passages"] == "window"


def test_serve_flag_fills_the_config():
    from crossrank.cli.main import build_parser
    from crossrank.cli.serve import config_from_args

    def config(*argv):
        return config_from_args(build_parser().parse_args(["serve", "--model", "m", *argv]))

    assert config().long_passages == "truncate"
    assert config("--long-passages", "window").long_passages == "window"
    with pytest.raises(SystemExit):
        config("--long-passages", "split")

"""Windows on real weights and real long texts: a SciFact claim's evidence put at the end of a long abstract.

The real MiniLM body (seeded new head) at max_length 128. These checks hold for any model, so they
test the window machinery, not the head: truncation never sees a passage's end (the passage scores
exactly as its start), windows do, and MaxP scores a passage at least as high as the best of its
windows, so a passage ending in its answer ranks at least where the answer alone ranks.
"""
from __future__ import annotations

import numpy as np
import pytest

from crossrank import CrossEncoder, WindowConfig
from crossrank.data import iter_corpus, iter_queries, load_qrels

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scifact(data_dir):
    folder = data_dir / "scifact"
    docs = {p.doc_id: p for p in iter_corpus(folder / "corpus.jsonl")}
    queries = {q.query_id: q.text for q in iter_queries(folder / "queries.jsonl")}
    return docs, queries, load_qrels(folder / "qrels" / "test.tsv")


@pytest.fixture(scope="module")
def minilm128(minilm_dir):
    return CrossEncoder(minilm_dir, max_length=128)


def text(doc) -> str:
    return f"{doc.title} {doc.text}"


def ranks(scores: np.ndarray) -> np.ndarray:
    """0 = best; equal scores share the better rank."""
    return np.array([int((scores > s).sum()) for s in scores])


def test_answer_at_the_end_is_seen_by_windows_only(scifact, minilm128):
    docs, queries, qrels = scifact
    qid = sorted(qrels, key=int)[0]
    query = queries[qid]
    answer = docs[next(iter(qrels[qid]))].title  # the title of the abstract that supports the claim
    relevant = {d for q in qrels for d in qrels[q]}
    n_tokens = lambda s: len(minilm128.pair_tokenizer.encode_texts([s])[0].ids)  # noqa: E731
    long_doc = next(d for d in sorted(docs) if d not in relevant and n_tokens(text(docs[d])) > 300)
    filler = text(docs[long_doc])  # > 2x what fits in 128 tokens: the end is cut by truncation
    size = n_tokens(answer)
    others = [t for t in (docs[d].title for d in sorted(docs)[1000:]) if n_tokens(t) <= size][:6]  # one window each
    with_answer, with_other = f"{filler} {answer}", f"{filler} {others[0]}"

    # truncation scores the passage by its start: the answer at its end changes nothing
    cut = minilm128.predict([(query, p) for p in (with_answer, with_other, filler)])
    np.testing.assert_allclose(cut, cut[2], atol=1e-5)
    # default windows: FirstP is truncation, MaxP is never below it, and the end is scored
    first, best, mean = (minilm128.predict([(query, with_answer), (query, with_other)], long_passages="window",
                                           window=WindowConfig(aggregate=how)) for how in ("first", "max", "mean"))
    np.testing.assert_allclose(first, cut[:2], atol=1e-5)
    assert np.all(best >= cut[:2] - 1e-6)
    assert abs(mean[0] - mean[1]) > 1e-4  # the last windows differ, so the passages do too

    # windows as long as the answer, stride 1: one window is exactly the answer, so MaxP >= its score
    exact = WindowConfig(size=size, stride=1)
    candidates = [with_answer, *others]
    alone = minilm128.predict([(query, p) for p in [answer, *others]])
    windowed = minilm128.predict([(query, p) for p in candidates], long_passages="window", window=exact)
    truncated = minilm128.predict([(query, p) for p in candidates])
    assert windowed[0] >= alone[0] - 1e-5
    np.testing.assert_allclose(windowed[1:], alone[1:], atol=1e-5)  # short passages: unchanged
    np.testing.assert_allclose(truncated[0], cut[2], atol=1e-5)
    # so the passage ranks at least where its answer alone ranks with windows, and where its filler ranks without
    assert ranks(windowed)[0] <= ranks(alone)[0]
    assert ranks(truncated)[0] == ranks(np.array([cut[2], *alone[1:]]))[0]

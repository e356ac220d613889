"""Window selection (`WindowConfig.keep`): the first window and those sharing most query tokens.

By hand on token ids, then through `encode_windows` and `predict` with the tiny BERT (a window kept
is scored exactly as alone, a window dropped never counts), then on real SciFact abstracts with
the real MiniLM body: kept windows are a subset of all windows, so MaxP over them lies between
FirstP and MaxP over every window.
"""
from __future__ import annotations

import numpy as np
import pytest

from crossrank import CrossEncoder, WindowConfig
from crossrank.model.windows import encode_windows, plan_windows, select_windows

WORDS = "the river flows past the old stone bridge near the town square".split()  # one MiniLM token each


@pytest.fixture(scope="module")
def tiny16(tiny_model_dir):
    return CrossEncoder(tiny_model_dir, max_length=16)  # 13 tokens for query + window


def test_select_windows_by_hand():
    spans = [(0, 3), (3, 6), (6, 9), (9, 12)]
    #          first      w1         w2 (rare 7)  w3 (7 and 8)
    passage = [1, 5, 5, 1, 6, 6, 1, 7, 6, 1, 7, 8]
    query = [1, 7, 8]
    # token 1 is in every window (weight log 2 each: it tells no window apart); 7 in two, 8 in one
    assert select_windows(query, passage, spans, 2) == [(0, 3), (9, 12)]
    assert select_windows(query, passage, spans, 3) == [(0, 3), (6, 9), (9, 12)]  # passage order
    assert select_windows(query, passage, spans, 1) == [(0, 3)]  # FirstP
    assert select_windows(query, passage, spans, 4) == spans == select_windows(query, passage, spans, 9)
    # no window but the first holds a query token: ties go to the earlier windows
    assert select_windows([42], passage, spans, 2) == [(0, 3), (3, 6)]
    # the first window is kept even when it matches nothing and later ones match more
    assert select_windows([8], passage, spans, 2)[0] == (0, 3)
    with pytest.raises(ValueError, match="select_windows expects keep >= 1, but got keep=0"):
        select_windows(query, passage, spans, 0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"keep": 0}, "window keep expects keep >= 1 .*but got keep=0"),
    ({"keep": 1.5}, "window keep expects an integer or None"),
    ({"keep": True}, "window keep expects an integer or None"),
])
def test_bad_keep_raises_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WindowConfig(**kwargs)


def test_kept_windows_are_scored_as_alone_and_dropped_ones_never_count(tiny16):
    # 30 passage words in windows of 5 (no overlap): 'bridge' (the query's rare word) only in the 5th window
    body = [w for w in WORDS if w != "bridge"]
    passage_words = [body[i % len(body)] for i in range(30)]
    passage_words[22] = "bridge"
    query, passage = "the bridge", " ".join(passage_words)
    pair_tok = tiny16.pair_tokenizer
    config = WindowConfig(size=5, stride=5, keep=2)
    windows = encode_windows(pair_tok, [(query, passage)], config)
    bodies = [tiny16.tokenizer.convert_ids_to_tokens(ids)[4:-1] for ids in windows.encoded.input_ids]
    assert bodies == [passage_words[0:5], passage_words[20:25]] and windows.owner.tolist() == [0, 0]
    every = encode_windows(pair_tok, [(query, passage)], WindowConfig(size=5, stride=5))
    assert len(every.owner) == len(plan_windows(2, 30, 13, WindowConfig(size=5, stride=5))) == 6

    alone = tiny16.predict([(query, " ".join(b)) for b in bodies])
    got = tiny16.predict([(query, passage)], long_passages="window", window=config)
    np.testing.assert_allclose(got, [alone.max()], atol=1e-5)
    first = tiny16.predict([(query, passage)], long_passages="window", window=WindowConfig(size=5, stride=5, keep=1))
    np.testing.assert_allclose(first, [alone[0]], atol=1e-5)
    # a passage that fits one window is untouched by keep
    short = [(query, "the old bridge")]
    np.testing.assert_allclose(tiny16.predict(short, long_passages="window", window=config), tiny16.predict(short), atol=1e-6)


@pytest.mark.slow
def test_kept_windows_on_scifact_lie_between_firstp_and_maxp(data_dir, minilm_dir):
    from crossrank.data import iter_corpus, iter_queries, load_qrels

    folder = data_dir / "scifact"
    qrels = load_qrels(folder / "qrels" / "test.tsv")
    queries = {q.query_id: q.text for q in iter_queries(folder / "queries.jsonl")}
    wanted = {d for q in sorted(qrels, key=int)[:12] for d in qrels[q]}
    docs = {p.doc_id: f"{p.title} {p.text}" for p in iter_corpus(folder / "corpus.jsonl") if p.doc_id in wanted}
    pairs = [(queries[q], docs[d]) for q in sorted(qrels, key=int)[:12] for d in qrels[q]]
    model = CrossEncoder(minilm_dir, max_length=96)
    size = WindowConfig(size=72, stride=72)
    kept = encode_windows(model.pair_tokenizer, pairs, WindowConfig(size=72, stride=72, keep=2))
    every = encode_windows(model.pair_tokenizer, pairs, size)
    assert every.split >= 8 and len(kept.owner) < len(every.owner)  # real abstracts run past one window
    assert np.bincount(kept.owner).max() == 2
    rows = {tuple(ids) for ids in every.encoded.input_ids}
    assert all(tuple(ids) in rows for ids in kept.encoded.input_ids)  # a subset of the windows, cut identically
    first, best, all_max = (model.predict(pairs, long_passages="window", window=w) for w in (
        WindowConfig(size=72, stride=72, aggregate="first"), WindowConfig(size=72, stride=72, keep=2), size))
    assert np.all(first <= best + 1e-5) and np.all(best <= all_max + 1e-5)
    assert np.any(best > first + 1e-4)  # some kept second window outscores the start

"""Long passages as windows: spans, settings, aggregation by hand; window inputs token by token; predict on the tiny BERT."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from crossrank import CrossEncoder
from crossrank.model.batching import BatchStats, padded_batches
from crossrank.model.windows import (
    WindowConfig,
    WindowEncoder,
    aggregate,
    encode_windows,
    plan_windows,
    resolve_long_passages,
    window_spans,
)

# each of these words is one WordPiece token of MiniLM's vocabulary
WORDS = "the river flows past the old stone bridge near the town square".split()
QUERY = "one two three"  # 3 tokens


@pytest.fixture(scope="module")
def tiny16(tiny_model_dir):
    """The tiny BERT with max_length 16: 3 special tokens, so 13 for query + window."""
    return CrossEncoder(tiny_model_dir, max_length=16)


def words(n: int, offset: int = 0) -> list[str]:
    return [WORDS[(i + offset) % len(WORDS)] for i in range(n)]


# ------------------------------------------------------------------ spans and settings
@pytest.mark.parametrize(("n", "size", "stride", "spans"), [
    (10, 4, 2, [(0, 4), (2, 6), (4, 8), (6, 10)]),
    (11, 4, 2, [(0, 4), (2, 6), (4, 8), (6, 10), (8, 11)]),  # the last window is shorter
    (9, 4, 4, [(0, 4), (4, 8), (8, 9)]),  # stride = size: no overlap
    (5, 3, 1, [(0, 3), (1, 4), (2, 5)]),
    (4, 4, 2, [(0, 4)]),  # fits: one window
    (3, 4, 2, [(0, 3)]),
    (0, 4, 2, [(0, 0)]),  # an empty passage still gets its one (empty) window
])
def test_window_spans_exact_boundaries(n, size, stride, spans):
    assert window_spans(n, size, stride) == spans


def test_windows_cover_every_token_with_the_stated_overlap():
    for n in range(0, 40):
        for size in range(1, 9):
            for stride in range(1, size + 1):
                spans = window_spans(n, size, stride)
                covered = set().union(*(range(s, e) for s, e in spans))
                assert covered == set(range(n))
                assert all(0 < e - s <= size for s, e in spans) or n == 0
                assert [s for s, _ in spans] == [i * stride for i in range(len(spans))]
                assert spans[-1][1] == n and (len(spans) == 1 or spans[-2][1] < n)  # stops at the first window that reaches the end


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"size": 0}, "window size expects size >= 1, but got size=0"),
    ({"stride": 0}, r"window stride expects 1 <= stride <= size, but got stride=0"),
    ({"size": 10, "stride": 11}, r"window stride expects 1 <= stride <= size, but got stride=11 \(size=10\)"),
    ({"size": 2.5}, "window size expects an integer or None"),
    ({"aggregate": "median"}, "window aggregate expects one of max, first, mean, but got 'median'"),
])
def test_bad_window_settings_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WindowConfig(**kwargs)


def test_aggregate_names_and_defaults():
    assert WindowConfig().aggregate == "max" and WindowConfig(aggregate="MaxP").aggregate == "max"
    assert WindowConfig(aggregate="FirstP").aggregate == "first" and WindowConfig(aggregate="mean").aggregate == "mean"
    assert WindowConfig().for_room(100) == (100, 50)  # what fits, half-window stride
    assert WindowConfig(size=300).for_room(100) == (100, 50)  # never more than fits
    assert WindowConfig(size=40, stride=30).for_room(20) == (20, 20)  # stride follows a reduced size
    assert WindowConfig(size=8, stride=3).for_room(100) == (8, 3)
    assert WindowConfig().for_room(1) == (1, 1)


def test_plan_windows_uses_what_the_query_leaves():
    # budget 13 (16 minus 3 special tokens), query 3 tokens: windows of 10, stride 5
    assert plan_windows(3, 22, 13, WindowConfig()) == [(0, 10), (5, 15), (10, 20), (15, 22)]
    assert plan_windows(3, 10, 13, WindowConfig()) == [(0, 10)]
    assert plan_windows(13, 22, 13, WindowConfig()) == [(0, 22)]  # no room: one window, truncated like truncation


def test_resolve_long_passages():
    assert resolve_long_passages("truncate", None) is None
    assert resolve_long_passages("window", None) == WindowConfig()
    assert resolve_long_passages("window", WindowConfig(size=5)) == WindowConfig(size=5)
    with pytest.raises(ValueError, match="long_passages expects one of 'truncate', 'window', but got 'split'"):
        resolve_long_passages("split", None)
    with pytest.raises(ValueError, match="pass long_passages='window'"):
        resolve_long_passages("truncate", WindowConfig())
    with pytest.raises(TypeError, match="window expects a WindowConfig"):
        resolve_long_passages("window", {"size": 5})


# ------------------------------------------------------------------ aggregation by hand
def test_aggregate_max_first_mean_by_hand():
    scores = np.array([1.0, 5.0, 2.0, 0.5, -1.0, -3.0])
    owner = np.array([0, 0, 0, 1, 2, 2])
    np.testing.assert_allclose(aggregate(scores, owner, 3, "max"), [5.0, 0.5, -1.0])
    np.testing.assert_allclose(aggregate(scores, owner, 3, "first"), [1.0, 0.5, -1.0])
    np.testing.assert_allclose(aggregate(scores, owner, 3, "mean"), [8 / 3, 0.5, -2.0], rtol=1e-6)
    assert aggregate(scores, owner, 3, "max").dtype == np.float32


def test_aggregate_refuses_passages_without_windows():
    with pytest.raises(ValueError, match="at least one window for each of the 3 passages"):
        aggregate(np.array([1.0, 2.0]), np.array([0, 2]), 3, "max")
    with pytest.raises(ValueError, match="one score per window"):
        aggregate(np.array([1.0, 2.0]), np.array([0]), 1, "max")


# ------------------------------------------------------------------ window inputs, token by token
def test_encode_windows_builds_query_plus_window_pairs(tiny16):
    tok = tiny16.tokenizer
    long_passage = " ".join(words(22))
    pairs = [(QUERY, long_passage), (QUERY, " ".join(words(4))), ("a b", "")]
    windows = encode_windows(tiny16.pair_tokenizer, pairs, WindowConfig())
    assert windows.owner.tolist() == [0, 0, 0, 0, 1, 2] and windows.split == 1 and windows.encoded.truncated == 0
    expected_spans = [(0, 10), (5, 15), (10, 20), (15, 22)]
    for row, (start, end) in enumerate(expected_spans):
        tokens = tok.convert_ids_to_tokens(windows.encoded.input_ids[row])
        assert tokens == ["[CLS]", "one", "two", "three", "[SEP]", *words(22)[start:end], "[SEP]"]
        assert windows.encoded.token_type_ids[row] == [0] * 5 + [1] * (end - start + 1)
    assert max(windows.encoded.lengths) == 16
    # a passage that fits is exactly the pair truncation would build
    assert windows.encoded.input_ids[4] == tiny16.tokenize([QUERY], [" ".join(words(4))]).input_ids[0]
    assert windows.encoded.input_ids[5] == tiny16.tokenize(["a b"], [""]).input_ids[0]


def test_query_longer_than_max_length_is_scored_as_truncation(tiny16):
    long_query = " ".join(["q"] * 30)
    passage = " ".join(words(40))
    windows = encode_windows(tiny16.pair_tokenizer, [(long_query, passage)], WindowConfig())
    assert windows.owner.tolist() == [0] and windows.encoded.truncated == 1
    assert windows.encoded.input_ids == tiny16.tokenize([long_query], [passage]).input_ids
    np.testing.assert_allclose(tiny16.predict([(long_query, passage)], long_passages="window"),
                               tiny16.predict([(long_query, passage)]), atol=1e-6)


def test_window_size_and_stride_settings(tiny16):
    windows = encode_windows(tiny16.pair_tokenizer, [(QUERY, " ".join(words(9)))], WindowConfig(size=4, stride=3))
    bodies = [tiny16.tokenizer.convert_ids_to_tokens(ids)[5:-1] for ids in windows.encoded.input_ids]
    assert bodies == [words(9)[0:4], words(9)[3:7], words(9)[6:9]]


def test_window_rows_keep_global_positions_across_chunks(tiny16):
    pairs = [(QUERY, " ".join(words(n, offset=n))) for n in (3, 25, 12, 40, 1, 18, 30)]
    encoder = WindowEncoder(tiny16.pair_tokenizer, WindowConfig())
    stats = BatchStats()
    rows = {}
    for index, arrays in padded_batches(tiny16.pair_tokenizer, pairs, None, 48, stats=stats, first_chunk=2, chunk=3, encode=encoder):
        assert arrays["input_ids"].size <= max(48, arrays["input_ids"].shape[1])
        for r, i in enumerate(index):
            rows[int(i)] = arrays["input_ids"][r][arrays["attention_mask"][r] == 1].tolist()
    reference = encode_windows(tiny16.pair_tokenizer, pairs, WindowConfig())
    assert sorted(rows) == list(range(len(reference.encoded))) == list(range(stats.rows))
    assert [rows[i] for i in range(stats.rows)] == reference.encoded.input_ids
    assert encoder.owner.tolist() == reference.owner.tolist() and stats.pairs == len(pairs)


# ------------------------------------------------------------------ predict with windows (tiny BERT)
def test_windowed_scores_are_the_aggregates_of_the_windows_scored_alone(tiny16):
    """Every window scored as an ordinary pair (one-token words, so the text re-tokenises exactly)."""
    passages = [" ".join(words(n, offset=n)) for n in (22, 7, 31)]
    pairs = [(QUERY, p) for p in passages]
    by_hand = []
    for p in passages:
        ws = p.split()
        spans = plan_windows(3, len(ws), 13, WindowConfig())
        by_hand.append(tiny16.predict([(QUERY, " ".join(ws[s:e])) for s, e in spans]))
    for how, reduce in (("max", np.max), ("first", lambda s: s[0]), ("mean", np.mean)):
        got = tiny16.predict(pairs, long_passages="window", window=WindowConfig(aggregate=how))
        np.testing.assert_allclose(got, [reduce(s) for s in by_hand], atol=1e-5, err_msg=how)
    # FirstP with the default window is truncation; MaxP is never below it
    truncated = tiny16.predict(pairs)
    np.testing.assert_allclose(tiny16.predict(pairs, long_passages="window", window=WindowConfig(aggregate="first")), truncated, atol=1e-5)
    assert np.all(tiny16.predict(pairs, long_passages="window") >= truncated - 1e-6)


def test_windows_keep_input_order_for_any_batching(tiny16):
    pairs = [(QUERY if i % 2 else "stone bridge", " ".join(words(n, offset=i))) for i, n in enumerate((5, 40, 12, 27, 1, 60, 9))]
    reference = np.array([tiny16.predict([p], long_passages="window")[0] for p in pairs])
    # the scores differ by more than the tolerance below, so a mix-up of the order would show
    assert len(np.unique(reference)) >= 5 and np.ptp(reference) > 5e-5
    for kwargs in ({}, {"batch_size": 1}, {"max_tokens_per_batch": 20}, {"batch_size": 3, "max_tokens_per_batch": 100}):
        np.testing.assert_allclose(tiny16.predict(pairs, long_passages="window", **kwargs), reference, atol=1e-5)
    with_sigmoid = tiny16.predict(pairs, long_passages="window", activation="sigmoid")
    np.testing.assert_allclose(with_sigmoid, 1 / (1 + np.exp(-reference)), atol=1e-6)


def test_rank_and_rerank_many_pass_windows_through(tiny16):
    passages = [" ".join(words(n, offset=n)) for n in (30, 4, 17)]
    scores = tiny16.predict([(QUERY, p) for p in passages], long_passages="window", window=WindowConfig(size=6, aggregate="mean"))
    ranked = tiny16.rank(QUERY, passages, long_passages="window", window=WindowConfig(size=6, aggregate="mean"))
    assert [r["corpus_id"] for r in ranked] == np.argsort(-scores, kind="stable").tolist()
    np.testing.assert_allclose([r["score"] for r in ranked], np.sort(scores)[::-1], atol=1e-6)
    many = tiny16.rerank_many([QUERY, QUERY], [passages[:2], passages[2:]], long_passages="window",
                              window=WindowConfig(size=6, aggregate="mean"))
    np.testing.assert_allclose(np.concatenate(many), scores, atol=1e-5)


def test_window_errors_and_one_log_line_per_call(tiny16, tiny_model_dir, caplog):
    pairs = [(QUERY, " ".join(words(40))), (QUERY, "short"), (QUERY, " ".join(words(25)))]
    with caplog.at_level(logging.INFO, logger="crossrank.model.cross_encoder"):
        tiny16.predict(pairs, long_passages="window")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["2 of 3 passages did not fit beside their query in max_length=16 and were split into windows "
                     "(12 windows scored for 3 pairs, aggregate max)"]  # 7 + 1 + 4
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="crossrank.model.cross_encoder"):
        tiny16.predict(pairs)
    assert [r.getMessage() for r in caplog.records] == ["2 of 3 pairs were longer than max_length=16 and lost passage tokens"]
    with pytest.raises(ValueError, match="long_passages expects one of"):
        tiny16.predict(pairs, long_passages="windows")
    with pytest.raises(ValueError, match="window stride expects"):
        tiny16.predict(pairs, long_passages="window", window=WindowConfig(size=4, stride=9))
    with pytest.raises(ValueError, match="expects a model with one output"):
        CrossEncoder(tiny_model_dir, num_labels=3).predict(pairs, long_passages="window")
    assert tiny16.predict([], long_passages="window").shape == (0,)

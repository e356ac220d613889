"""The bi-encoder's vector cache: the same vectors as without it, each text embedded once, kept across restarts."""
from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest

from crossrank.model.dense import DenseEncoder
from crossrank.model.vector_cache import VectorCache


@pytest.fixture(scope="module")
def lists(data_dir):
    """Three real dev600 queries with 4 passages each; the second list repeats two passages of the first."""
    from crossrank.data import iter_corpus, iter_queries

    passages = [p.text for p in itertools.islice(iter_corpus(data_dir / "msmarco-dev600" / "collection.tsv"), 10)]
    queries = [q.text for q in itertools.islice(iter_queries(data_dir / "msmarco-dev600" / "queries.tsv"), 3)]
    return queries, [passages[0:4], passages[2:6], passages[6:10]]


def test_cached_vectors_equal_fresh_ones_and_each_text_is_embedded_once(minilm_dir, lists, tmp_path):
    queries, texts = lists
    plain = DenseEncoder(minilm_dir, max_length=64).encode_lists(queries, texts)
    cache = VectorCache(tmp_path / "vectors.npz")
    dense = DenseEncoder(minilm_dir, max_length=64, cache=cache)
    first = dense.encode_lists(queries, texts)
    assert cache.misses == 3 + 10 and cache.hits == 0  # distinct texts only: two passages repeat
    again = dense.encode_lists(queries[:1], texts[:1])
    assert cache.misses == 13 and cache.hits == 5
    for (q0, p0), (q1, p1) in zip(plain, first):
        np.testing.assert_allclose(q1, q0, atol=1e-5)
        np.testing.assert_allclose(p1, p0, atol=1e-5)
    np.testing.assert_array_equal(again[0][1], first[0][1])

    restored = VectorCache(tmp_path / "vectors.npz")  # a restart: nothing is embedded again
    after = DenseEncoder(minilm_dir, max_length=64, cache=restored).encode_lists(queries, texts)
    assert len(restored) == 13 and restored.misses == 0 and restored.hits == 13
    for (q0, p0), (q1, p1) in zip(first, after):
        np.testing.assert_array_equal(q1, q0)
        np.testing.assert_array_equal(p1, p0)


def test_a_cache_of_another_set_up_or_a_corrupt_file_is_not_used(minilm_dir, lists, tmp_path, caplog):
    queries, texts = lists
    path = tmp_path / "vectors.npz"
    DenseEncoder(minilm_dir, max_length=64, cache=VectorCache(path)).encode_lists(queries, texts)
    expected = DenseEncoder(minilm_dir, max_length=32).encode_lists(queries, texts)

    other = VectorCache(path)
    with caplog.at_level(logging.WARNING, logger="crossrank.model.vector_cache"):
        got = DenseEncoder(minilm_dir, max_length=32, cache=other).encode_lists(queries, texts)
    assert "another encoder set-up" in caplog.text and other.hits == 0 and other.misses == 13
    for (q0, p0), (q1, p1) in zip(expected, got):
        np.testing.assert_allclose(q1, q0, atol=1e-5)
        np.testing.assert_allclose(p1, p0, atol=1e-5)

    path.write_bytes(b"not an npz file")
    broken = VectorCache(path)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="crossrank.model.vector_cache"):
        got = DenseEncoder(minilm_dir, max_length=32, cache=broken).encode_lists(queries, texts)
    assert "unreadable" in caplog.text and broken.misses == 13
    np.testing.assert_allclose(got[0][1], expected[0][1], atol=1e-5)
    reread = VectorCache(path)
    reread.bind(DenseEncoder(minilm_dir, max_length=32).identity())
    assert len(reread) == 13


@pytest.mark.parametrize("fp32_s, bf16_s, expected", [(1.0, 0.45, "bf16"), (0.45, 1.0, "fp32")])
def test_auto_precision_follows_the_hosts_measurement(minilm_dir, lists, tmp_path, monkeypatch, fp32_s, bf16_s, expected):
    """`precision="auto"` takes bf16 only where this host's forward pass measured faster (a measurement
    read from the per-host cache here), and its vectors stay within bf16's error of the exact ones."""
    from crossrank.model.backends import precision as P
    from crossrank.model.backends.base import update_json

    monkeypatch.setenv("CROSSRANK_CACHE", str(tmp_path / "cache"))
    queries, texts = lists
    exact = DenseEncoder(minilm_dir, max_length=64, batch_size=16)
    key = P.cache_key(exact.model, exact.device, 16, 64, "inference")
    update_json(tmp_path / "cache" / P.CACHE_FILE, key, {"seconds": {"fp32": fp32_s, "bf16": bf16_s}, "rounds": 3})
    auto = DenseEncoder(minilm_dir, max_length=64, batch_size=16, precision="auto")
    assert auto.precision == expected and "16 x 64-token" in auto.precision_reason
    assert expected in auto.identity()  # a vector cache is bound to the precision that made it
    want = exact.encode_lists(queries, texts)
    got = auto.encode_lists(queries, texts)
    for (q0, p0), (q1, p1) in zip(want, got):
        assert float(q0 @ q1) > 0.999 and np.all(np.einsum("ij,ij->i", p0, p1) > 0.999)
    with pytest.raises(ValueError, match="'fp32', 'bf16' or 'auto'"):
        DenseEncoder(minilm_dir, precision="fastest")

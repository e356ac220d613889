"""Batching by token budget: budgets obeyed, every pair once, input order restored, tokenising ahead on a thread."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from crossrank import CrossEncoder
from crossrank.model.batching import BatchStats, length_groups, length_sorted_batches, padded_batches, prefetch

WORDS = "the cat sat on a mat while stock markets fell and mount everest stood tall".split()


def make_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    return [
        (" ".join(rng.choice(WORDS, rng.integers(1, 6))), " ".join(rng.choice(WORDS, rng.integers(1, 60))))
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return CrossEncoder(tiny_model_dir)


@pytest.mark.parametrize("batch_size, budget", [(None, 64), (4, 64), (3, None), (None, 1000), (2, 10)])
def test_batches_obey_budget_and_cover_every_pair_once(batch_size, budget):
    lengths = np.random.default_rng(1).integers(3, 40, 200)
    batches = length_sorted_batches(lengths, batch_size, budget)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(200))  # each pair exactly once
    for b in batches:
        width = lengths[b].max()
        if batch_size is not None:
            assert len(b) <= batch_size
        if budget is not None and len(b) > 1:
            assert len(b) * width <= budget  # padded tokens within the budget
        assert list(lengths[b]) == sorted(lengths[b], reverse=True)  # longest first within a batch
    # a budget fills batches: short pairs travel in bigger batches than long ones
    if budget == 64 and batch_size is None:
        sizes = {int(lengths[b].max()): len(b) for b in batches}
        assert sizes[min(sizes)] > sizes[max(sizes)]


def test_pair_longer_than_budget_goes_alone():
    batches = length_sorted_batches(np.array([50, 3, 3]), None, 10)
    assert [b.tolist() for b in batches] == [[0], [1, 2]]


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0, "max_tokens": None}, "batch_size"),
    ({"batch_size": None, "max_tokens": 0}, "max_tokens_per_batch"),
    ({"batch_size": None, "max_tokens": None}, "give batch_size"),
])
def test_bad_batching_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        length_sorted_batches(np.array([3, 4]), **kwargs)


def test_padded_batches_chunks_keep_global_positions(tiny):
    pairs = make_pairs(23)
    stats = BatchStats()
    seen = []
    for index, arrays in padded_batches(tiny.pair_tokenizer, pairs, None, 60, stats=stats, first_chunk=4, chunk=7):
        n, width = arrays["input_ids"].shape
        assert n == len(index) and n * width <= max(60, width)
        assert set(arrays) == {"input_ids", "attention_mask", "token_type_ids"}
        assert arrays["input_ids"].dtype == np.int64
        for row, i in enumerate(index):  # each row holds the pair at its global position
            expected = tiny.tokenize([pairs[i][0]], [pairs[i][1]]).input_ids[0]
            assert arrays["input_ids"][row, : len(expected)].tolist() == expected
            assert arrays["attention_mask"][row].sum() == len(expected)
        seen.extend(index.tolist())
    assert sorted(seen) == list(range(23))
    assert stats.pairs == 23 and stats.batches >= 4 and stats.real_tokens <= stats.padded_tokens


def test_predict_restores_input_order_for_any_batching(tiny):
    pairs = make_pairs(40)
    reference = np.array([tiny.predict([p])[0] for p in pairs[:10]])
    for kwargs in ({}, {"batch_size": 1}, {"max_tokens_per_batch": 50}, {"batch_size": 7, "max_tokens_per_batch": 300}):
        scores = tiny.predict(pairs, **kwargs)
        assert scores.shape == (40,)
        np.testing.assert_allclose(scores[:10], reference, atol=1e-5)
    perm = np.random.default_rng(2).permutation(40)
    np.testing.assert_allclose(tiny.predict([pairs[i] for i in perm]), tiny.predict(pairs)[perm], atol=1e-5)


def test_predict_rejects_bad_budget(tiny):
    with pytest.raises(ValueError, match="max_tokens_per_batch"):
        tiny.predict([("q", "p")], max_tokens_per_batch=0)
    with pytest.raises(ValueError, match="batch_size"):
        tiny.predict([("q", "p")], batch_size=0)


def test_prefetch_runs_ahead_on_another_thread_in_order():
    threads = []

    def produce():
        for i in range(10):
            threads.append(threading.get_ident())
            yield i

    assert list(prefetch(produce(), depth=2)) == list(range(10))
    assert set(threads) == {threads[0]} and threads[0] != threading.get_ident()


def test_prefetch_raises_the_producers_error():
    def produce():
        yield 1
        raise KeyError("boom")

    got = []
    with pytest.raises(KeyError, match="boom"):
        for item in prefetch(produce()):
            got.append(item)
    assert got == [1]


def test_prefetch_stops_the_producer_when_the_consumer_stops():
    produced = []

    def produce():
        for i in range(1000):
            produced.append(i)
            yield i

    gen = prefetch(produce(), depth=2)
    assert next(gen) == 0
    gen.close()
    assert len(produced) < 10  # stopped long before the end


def _cost(lengths, groups, overhead):
    return sum(int(lengths[g].max()) * len(g) + overhead for g in groups)


def _brute_force_cost(lengths, overhead):
    """Cheapest split of the sorted lengths into contiguous groups, by trying every set of cuts."""
    ordered = np.sort(lengths)
    n = len(ordered)
    best = None
    for mask in range(1 << (n - 1)):
        cuts = [0] + [i + 1 for i in range(n - 1) if mask >> i & 1] + [n]
        cost = sum(int(ordered[a:b].max()) * (b - a) + overhead for a, b in zip(cuts, cuts[1:]))
        best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("overhead", [0, 8, 32, 200])
def test_length_groups_are_the_cheapest_split_and_cover_every_pair_once(seed, overhead):
    lengths = np.random.default_rng(seed).integers(5, 120, 10)
    groups = length_groups(lengths, overhead)
    assert sorted(np.concatenate(groups).tolist()) == list(range(10))
    assert _cost(lengths, groups, overhead) == _brute_force_cost(lengths, overhead)
    assert all(lengths[a].max() <= lengths[b].min() for a, b in zip(groups, groups[1:]))  # sorted, contiguous


def test_length_groups_edge_cases():
    assert [g.tolist() for g in length_groups(np.array([40, 40, 40]), 32)] == [[0, 1, 2]]  # nothing to save
    assert len(length_groups(np.array([10, 200]), 0)) == 2  # free groups: each length alone
    assert len(length_groups(np.array([10, 200]), 10_000)) == 1  # groups too dear: one batch
    with pytest.raises(ValueError, match="non-empty 1-d array"):
        length_groups(np.array([]), 32)
    with pytest.raises(ValueError, match="overhead_tokens >= 0"):
        length_groups(np.array([3]), -1)


def test_forward_pairs_in_length_groups_matches_one_padded_batch(tiny):
    import torch

    pairs = make_pairs(24, seed=3)
    queries, passages = [q for q, _ in pairs], [p for _, p in pairs]
    assert len(length_groups(tiny.tokenize(queries, passages).lengths, 4)) > 1  # the split really happens
    tiny.model.train(False)
    results = []
    for grouped in (False, True):
        tiny.model.zero_grad()
        logits = tiny.forward_pairs(queries, passages, length_groups=grouped, overhead_tokens=4)
        (logits * torch.linspace(-1, 1, len(pairs))).sum().backward()
        grad = tiny.model.classifier.weight.grad.clone()
        results.append((logits.detach().numpy(), grad.numpy()))
    np.testing.assert_allclose(results[1][0], results[0][0], atol=1e-5)
    np.testing.assert_allclose(results[1][1], results[0][1], atol=1e-5)
    tiny.model.zero_grad()

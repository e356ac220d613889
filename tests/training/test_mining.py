"""Hard-negative mining (`crossrank.training.mining`, `.dense`, `crossrank mine`) on MS MARCO dev600."""
from __future__ import annotations

import math

import numpy as np
import pytest

from crossrank.data import Collection, load_qrels, load_queries, load_run
from crossrank.training.datasets import load_split
from crossrank.training.mining import MiningConfig, mine, mine_negatives


@pytest.fixture(scope="module")
def d600(dev600_data):
    """dev600 train split: queries, official qrels, BM25 top-20 run (train queries only), collection."""
    keep = load_split(dev600_data["split"], "train")
    run = load_run(dev600_data["run"])
    return {
        "queries": load_queries(dev600_data["queries"]),
        "qrels": load_qrels(dev600_data["qrels"]),
        "run": {q: docs for q, docs in run.items() if q in keep},
        "collection": Collection.open(dev600_data["corpus"]),
    }


def ranked_non_positive(run, qrels, qid):
    """A query's candidates best first (score desc, doc id asc), judged positives left out."""
    ranked = sorted(run[qid].items(), key=lambda kv: (-kv[1], kv[0]))
    return [d for d, _ in ranked if qrels.get(qid, {}).get(d, 0) <= 0]


def negatives_by_query(examples, fmt="tuples"):
    out = {}
    for e in examples:
        if fmt == "pairs":
            if e.targets == [0.0]:
                out.setdefault(e.query_id, []).extend(e.doc_ids)
            else:
                out.setdefault(e.query_id, [])
        else:
            out[e.query_id] = [d for d, t in zip(e.doc_ids, e.targets) if t == 0.0]
    return out


def minable(d, qrels=None):
    """Train queries with a judged positive that has text."""
    qrels = qrels or d["qrels"]
    return {q for q in d["run"] if any(r > 0 and p in d["collection"] for p, r in qrels.get(q, {}).items())}


# --------------------------------------------------------------------------- BM25 run, every option


def test_window_and_count_take_the_best_candidates_after_range_min(d600):
    cfg = MiningConfig(range_min=2, range_max=9, num_negatives=4)
    examples = mine_negatives(d600["queries"], d600["qrels"], d600["collection"], d600["run"], cfg)
    negs = negatives_by_query(examples)
    assert set(negs) == minable(d600) and len(examples) == len(negs)  # one positive per query here
    for e in examples:
        assert d600["qrels"][e.query_id][e.doc_ids[0]] > 0 and e.targets == [1.0, 0.0, 0.0, 0.0, 0.0]
        assert e.doc_ids[1:] == ranked_non_positive(d600["run"], d600["qrels"], e.query_id)[2:9][:4]
        assert e.query == d600["queries"][e.query_id]
        assert e.passages == [d600["collection"][p] for p in e.doc_ids]


def test_range_max_limits_the_candidates(d600):
    cfg = MiningConfig(range_min=0, range_max=5, num_negatives=50)
    negs = negatives_by_query(mine_negatives(d600["queries"], d600["qrels"], d600["collection"], d600["run"], cfg))
    for qid, docs in negs.items():
        assert docs == ranked_non_positive(d600["run"], d600["qrels"], qid)[:5]


def test_max_score_drops_candidates_above_it(d600):
    cfg = MiningConfig(range_max=None, num_negatives=50, max_score=12.0)
    result = mine(d600["queries"], d600["qrels"], d600["collection"], d600["run"], cfg)
    negs = negatives_by_query(result.examples)
    assert negs and result.stats.removed["max_score"] > 0
    for qid, docs in negs.items():
        run = d600["run"][qid]
        assert all(run[d] <= 12.0 for d in docs)
        assert docs == [d for d in ranked_non_positive(d600["run"], d600["qrels"], qid) if run[d] <= 12.0]


@pytest.mark.parametrize("option, value", [("margin", 3.0), ("margin", 0.0), ("relative_margin", 0.25)])
def test_margin_to_the_positive_uses_first_stage_scores(d600, option, value):
    cfg = MiningConfig(range_max=None, num_negatives=50, **{option: value})
    result = mine(d600["queries"], d600["qrels"], d600["collection"], d600["run"], cfg)
    negs = negatives_by_query(result.examples)
    assert negs and result.stats.removed["margin"] > 0
    for e in result.examples:
        run = d600["run"][e.query_id]
        pos = run[e.doc_ids[0]]
        limit = pos - value if option == "margin" else pos * (1 - value)
        expected = [d for d in ranked_non_positive(d600["run"], d600["qrels"], e.query_id) if run[d] <= limit]
        assert negs[e.query_id] == expected and expected
        assert all(run[d] <= limit for d in e.doc_ids[1:])
    # a query drops out exactly when no candidate is far enough below its positive
    assert len(negs) + result.stats.skipped["too_few_negatives"] == len(minable(d600))


def test_margin_drops_everything_when_the_positive_has_no_first_stage_score(d600):
    qid = sorted(minable(d600))[0]
    pos = next(p for p, r in d600["qrels"][qid].items() if r > 0)
    run = {qid: {d: s for d, s in d600["run"][qid].items() if d != pos}}
    plain = mine(d600["queries"], d600["qrels"], d600["collection"], run, MiningConfig(num_negatives=3))
    assert len(plain.examples) == 1 and plain.examples[0].doc_ids[0] == pos  # fine without a margin
    result = mine(d600["queries"], d600["qrels"], d600["collection"], run, MiningConfig(margin=0.0))
    assert result.examples == [] and result.stats.unscored_positive == 1
    assert result.stats.removed["margin"] == len(run[qid]) and result.stats.skipped["too_few_negatives"] == 1


def test_judged_positives_are_never_negatives_in_any_format(d600):
    """Extra judgments: each query's rank-3 doc relevant (grade 2), its rank-5 doc judged non-relevant (0)."""
    qrels = {q: dict(j) for q, j in d600["qrels"].items()}
    extra_pos, extra_zero = {}, {}
    for qid in d600["run"]:
        ranked = sorted(d600["run"][qid].items(), key=lambda kv: (-kv[1], kv[0]))
        extra_pos[qid], extra_zero[qid] = ranked[2][0], ranked[4][0]
        qrels.setdefault(qid, {}).setdefault(ranked[2][0], 2)
        qrels[qid].setdefault(ranked[4][0], 0)
    qrels["no-such-query"] = {"no-such-doc": 1}  # judgments of unknown queries are ignored
    for fmt in ("pairs", "tuples", "lists"):
        cfg = MiningConfig(range_max=None, num_negatives=50, format=fmt)
        examples = mine_negatives(d600["queries"], qrels, d600["collection"], d600["run"], cfg)
        negs = negatives_by_query(examples, fmt)
        assert set(negs) == minable(d600, qrels)
        for qid, docs in negs.items():
            assert not any(qrels[qid].get(d, 0) > 0 for d in docs)
            assert docs == ranked_non_positive(d600["run"], qrels, qid)
            if qrels[qid][extra_pos[qid]] > 0:
                assert extra_pos[qid] not in docs
            if qrels[qid][extra_zero[qid]] == 0:
                assert extra_zero[qid] in docs  # judged non-relevant: a fine negative
        positives = {q: sorted(p for p, r in qrels[q].items() if r > 0 and p in d600["collection"]) for q in negs}
        if fmt == "pairs":
            assert all(len(e.passages) == 1 and e.targets in ([1.0], [0.0]) for e in examples)
            assert sum(e.targets == [1.0] for e in examples) == sum(map(len, positives.values()))
        elif fmt == "tuples":
            assert len(examples) == sum(map(len, positives.values()))
            assert all(e.targets[0] == 1.0 and e.targets[1:] == [0.0] * (len(e.targets) - 1) for e in examples)
        else:
            assert len(examples) == len(negs)
            for e in examples:
                n_pos = len(positives[e.query_id])
                assert e.doc_ids[:n_pos] == positives[e.query_id]
                assert e.targets[:n_pos] == [float(qrels[e.query_id][p]) for p in positives[e.query_id]]
                assert set(e.targets[n_pos:]) == {0.0}
                if qrels[e.query_id][extra_pos[e.query_id]] == 2:
                    assert 2.0 in e.targets


def test_random_sampling_is_seeded_and_draws_from_the_window(d600):
    args = (d600["queries"], d600["qrels"], d600["collection"], d600["run"])

    def run(seed, **kw):
        return mine_negatives(*args, MiningConfig(range_min=1, range_max=15, num_negatives=4, sampling="random", seed=seed, **kw))

    first, again, other = run(0), run(0), run(1)
    assert [(e.query_id, e.doc_ids) for e in first] == [(e.query_id, e.doc_ids) for e in again]
    assert [e.doc_ids for e in first] != [e.doc_ids for e in other]
    top = negatives_by_query(mine_negatives(*args, MiningConfig(range_min=1, range_max=15, num_negatives=4)))
    negs = negatives_by_query(first)
    assert negs.keys() == top.keys() and any(sorted(negs[q]) != sorted(top[q]) for q in negs)
    for qid, docs in negs.items():
        window = ranked_non_positive(d600["run"], d600["qrels"], qid)[1:15]
        assert len(docs) == min(4, len(window)) == len(set(docs)) and set(docs) <= set(window)
    # seeded per query: mining a subset of the queries draws the same negatives for them
    subset = {q: d600["run"][q] for q in sorted(d600["run"])[:25]}
    sub = negatives_by_query(mine_negatives(d600["queries"], d600["qrels"], d600["collection"], subset,
                                            MiningConfig(range_min=1, range_max=15, num_negatives=4, sampling="random")))
    assert sub and all(sub[q] == negs[q] for q in sub)


def test_stats_count_what_each_step_removed(d600):
    cfg = MiningConfig(range_min=1, range_max=10, max_score=17.0, margin=1.0, num_negatives=3, min_negatives=3)
    result = mine(d600["queries"], d600["qrels"], d600["collection"], d600["run"], cfg)
    s = result.stats
    assert s.queries == len(d600["run"]) and s.skipped["no_positive"] == len(d600["run"]) - len(minable(d600))
    assert s.used == len(result.examples) == s.examples and s.used + s.skipped["too_few_negatives"] == len(minable(d600))
    assert all(len(e.doc_ids) == 4 for e in result.examples) and s.mean_negatives == 3.0
    considered = [q for q in sorted(d600["run"]) if q in minable(d600)]
    assert s.removed["positive"] == sum(d600["qrels"][q].get(d, 0) > 0 for q in considered for d in d600["run"][q])
    assert s.removed["window"] == sum(len(ranked_non_positive(d600["run"], d600["qrels"], q)) - 9 for q in considered)
    assert s.removed["max_score"] > 0 and s.removed["margin"] > 0 and s.removed["rescore"] == 0
    assert "examples: " in s.summary() and "margin" in s.summary()


@pytest.mark.parametrize("kwargs, message", [
    ({"margin": 1.0, "relative_margin": 0.1}, "not both"),
    ({"range_min": 5, "range_max": 5}, "range_max"),
    ({"range_min": -1}, "range_min"),
    ({"num_negatives": 0}, "num_negatives"),
    ({"sampling": "hardest"}, "sampling"),
    ({"format": "groups"}, "format"),
    ({"relative_margin": 1.5}, "relative_margin"),
    ({"max_score": math.nan}, "max_score"),
    ({"min_negatives": 9, "num_negatives": 7}, "min_negatives"),
])
def test_config_rejects_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MiningConfig(**kwargs)


# --------------------------------------------------------------------------- dense bi-encoder


def test_exact_search_matches_a_full_sort():
    from crossrank.training.dense import exact_search

    rng = np.random.default_rng(0)
    q, d = rng.normal(size=(7, 16)).astype(np.float32), rng.normal(size=(50, 16)).astype(np.float32)
    full = q @ d.T
    for k in (1, 5, 50, 80):
        scores, indices = exact_search(q, d, k, chunk_size=3)
        expected = np.argsort(-full, axis=1, kind="stable")[:, : min(k, 50)]
        assert np.array_equal(indices, expected)
        assert np.allclose(scores, np.take_along_axis(full, expected, axis=1), atol=1e-5)


def test_dense_embeddings_match_sentence_transformers(minilm_dir, d600):
    from sentence_transformers import SentenceTransformer

    from crossrank.model.dense import DenseEncoder

    ids = sorted(d600["collection"])[:4]
    texts = ["what is the capital of france", "  padded query with spaces  ", "x"] + [d600["collection"][i] for i in ids]
    texts.append(" ".join(texts[3:]) * 3)  # longer than max_length: truncated
    st = SentenceTransformer(str(minilm_dir), device="cpu")
    ours = DenseEncoder(minilm_dir, device="cpu", batch_size=3)
    assert ours.max_length == st.max_seq_length == 256 and ours.pooling == "mean"
    for max_length in (256, 48):
        st.max_seq_length = ours.max_length = max_length
        a = ours.encode(texts, show_progress=False)
        b = st.encode(texts, convert_to_numpy=True, batch_size=3)
        assert a.shape == b.shape == (len(texts), 384) and a.dtype == np.float32
        assert np.abs(a - b).max() < 1e-4
        assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


class RecordingEncoder:
    """Wraps a DenseEncoder and keeps what it returned, to check the search on the same vectors."""

    def __init__(self, encoder):
        self.encoder, self.calls = encoder, []

    def encode(self, texts, **kwargs):
        out = self.encoder.encode(texts, **kwargs)
        self.calls.append((list(texts), out))
        return out


def test_dense_mining_gives_the_top_cosine_neighbours_without_positives(d600, minilm_dir):
    from crossrank.model.dense import DenseEncoder
    from crossrank.training.dense import dense_candidates

    qids = sorted(minable(d600))[:12]
    doc_ids = sorted({d for q in qids for d in d600["run"][q]})  # the corpus: these queries' BM25 candidates
    queries = {q: d600["queries"][q] for q in qids}
    enc = RecordingEncoder(DenseEncoder(minilm_dir, max_length=64, device="cpu"))
    candidates = dense_candidates(queries, d600["collection"], k=6, qrels=d600["qrels"], doc_ids=doc_ids,
                                  encoder=enc, show_progress=False)
    (doc_texts, doc_emb), (query_texts, query_emb) = enc.calls
    assert doc_texts == [d600["collection"][d] for d in doc_ids] and query_texts == [queries[q] for q in qids]
    sims = query_emb @ doc_emb.T
    for row, qid in enumerate(qids):
        positives = {d for d, r in d600["qrels"][qid].items() if r > 0 and d in set(doc_ids)}
        order = [doc_ids[i] for i in np.argsort(-sims[row], kind="stable")]
        expected = [d for d in order if d not in positives][:6]
        got = candidates[qid]
        assert set(got) == set(expected) | positives and positives
        for d, s in got.items():
            assert s == pytest.approx(float(sims[row, doc_ids.index(d)]), abs=1e-5)

    examples = mine_negatives(queries, d600["qrels"], d600["collection"], candidates,
                              MiningConfig(range_min=1, range_max=6, num_negatives=3))
    assert len(examples) == len(qids)
    for e in examples:
        row = qids.index(e.query_id)
        ranked = sorted((d for d in doc_ids if d600["qrels"][e.query_id].get(d, 0) <= 0),
                        key=lambda d: -sims[row, doc_ids.index(d)])
        assert e.doc_ids[1:] == ranked[1:4]
        assert d600["qrels"][e.query_id][e.doc_ids[0]] > 0

    # a relative margin to the positive's cosine
    result = mine(queries, d600["qrels"], d600["collection"], candidates,
                  MiningConfig(range_max=6, num_negatives=6, relative_margin=0.1, min_negatives=0))
    assert result.stats.removed["margin"] > 0
    for e in result.examples:
        pos = candidates[e.query_id][e.doc_ids[0]]
        assert all(candidates[e.query_id][d] <= pos * 0.9 for d in e.doc_ids[1:])


# --------------------------------------------------------------------------- cross-encoder rescoring


def test_rescoring_drops_candidates_the_cross_encoder_ranks_near_the_positive(d600, tiny_model_dir):
    from crossrank.model import CrossEncoder

    qids = sorted(minable(d600))[:20]
    run = {q: d600["run"][q] for q in qids}
    ce = CrossEncoder(tiny_model_dir, device="cpu")  # random weights: scores ~0.004 +- 1e-5
    positives = {q: [p for p, r in d600["qrels"][q].items() if r > 0] for q in qids}
    windows = {q: ranked_non_positive(run, d600["qrels"], q)[:10] for q in qids}
    pairs = [(d600["queries"][q], d600["collection"][d]) for q in qids for d in positives[q] + windows[q]]
    flat = ce.predict(pairs, show_progress_bar=False).tolist()  # independent scores, one call
    ce_scores, at = {}, 0
    for q in qids:
        n = len(positives[q]) + len(windows[q])
        ce_scores[q], at = flat[at : at + n], at + n
    removed = {}
    for margin, rescorer in ((0.0, None), (-5e-6, ce)):  # from the model path, then a loaded model
        cfg = MiningConfig(range_max=10, num_negatives=10, min_negatives=0, rescore_model=str(tiny_model_dir),
                           rescore_margin=margin)
        result = mine(d600["queries"], d600["qrels"], d600["collection"], run, cfg, rescorer=rescorer, show_progress=False)
        negs = negatives_by_query(result.examples)
        kept = dropped = 0
        for qid in qids:
            n_pos = len(positives[qid])
            limit = min(ce_scores[qid][:n_pos]) - margin
            for d, score in zip(windows[qid], ce_scores[qid][n_pos:]):
                if abs(score - limit) < 1e-8:
                    continue  # too close to call across batchings
                if score < limit:
                    kept += 1
                    assert d in negs.get(qid, [])
                else:
                    dropped += 1
                    assert d not in negs.get(qid, [])
        assert kept > 0 and dropped > 0
        removed[margin] = result.stats.removed["rescore"]
        assert removed[margin] == sum(map(len, windows.values())) - sum(map(len, negs.values()))
    assert removed[-5e-6] < removed[0.0]  # a negative margin lets candidates a little above the positive through


# --------------------------------------------------------------------------- CLI


def cli_args(dev600_data, output, *extra, run=None, qrels=None):
    return ["mine", "--queries", dev600_data["queries"], "--corpus", dev600_data["corpus"],
            "--qrels", str(qrels or dev600_data["qrels"]), "--run", str(run or dev600_data["run"]),
            "--output", str(output), "--split", dev600_data["split"], "--split-name", "train", "--no-progress", *extra]


def test_cli_mine_writes_examples_that_iter_examples_reads(d600, dev600_data, tmp_path, capsys):
    from crossrank.cli.main import main
    from crossrank.training.example_files import iter_examples

    out = tmp_path / "sub" / "mined.jsonl"
    flags = ["--num-negatives", "5", "--range-min", "1", "--range-max", "12", "--relative-margin", "0.1",
             "--sampling", "random", "--seed", "3", "--format", "lists"]
    assert main(cli_args(dev600_data, out, *flags)) == 0
    summary = capsys.readouterr().out
    assert "examples: " in summary and "negatives per mined query" in summary and "margin" in summary
    written = list(iter_examples(out))
    expected = mine_negatives(d600["queries"], d600["qrels"], d600["collection"], d600["run"],
                              MiningConfig(num_negatives=5, range_min=1, range_max=12, relative_margin=0.1,
                                           sampling="random", seed=3, format="lists"))
    assert [(e.query_id, e.doc_ids, e.targets, e.passages) for e in written] == \
        [(e.query_id, e.doc_ids, e.targets, e.passages) for e in expected]
    assert len(written) > 300


def test_cli_mine_dense_on_a_small_corpus(d600, dev600_data, tmp_path, capsys):
    from crossrank.cli.main import main
    from crossrank.training.example_files import iter_examples

    qids = sorted(minable(d600))[:3]
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text("".join(f"{d}\t{d600['collection'][d]}\n" for q in qids for d in sorted(d600["run"][q])), encoding="utf-8")
    queries = tmp_path / "queries.tsv"
    queries.write_text("".join(f"{q}\t{d600['queries'][q]}\n" for q in qids), encoding="utf-8")
    out = tmp_path / "dense.jsonl"
    rc = main(["mine", "--queries", str(queries), "--corpus", str(corpus), "--qrels", dev600_data["qrels"], "--dense",
               "--dense-max-length", "32", "--output", str(out), "--num-negatives", "4", "--range-max", "10",
               "--format", "pairs", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    written = list(iter_examples(out))
    assert {e.query_id for e in written} == set(qids) and len(written) == 3 * (1 + 4)
    for e in written:
        assert (d600["qrels"][e.query_id].get(e.doc_ids[0], 0) > 0) == (e.targets == [1.0])
    assert "dense" in capsys.readouterr().out


def test_cli_malformed_run_line_names_file_and_line_and_writes_nothing(dev600_data, tmp_path, capsys):
    from crossrank.cli.main import main

    lines = open(dev600_data["run"], encoding="utf-8").read().splitlines()
    lines[6] = "9083 Q0 7067274 seven 20 tag"
    bad = tmp_path / "bad.trec"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(cli_args(dev600_data, out, run=bad)) == 2
    err = capsys.readouterr().err
    assert f"{bad}:7" in err and "rank" in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.trec"]

    # judgments of an unknown query are fine
    qrels = tmp_path / "qrels.trec"
    qrels.write_text(open(dev600_data["qrels"], encoding="utf-8").read() + "no-such-query 0 123 1\n", encoding="utf-8")
    assert main(cli_args(dev600_data, out, qrels=qrels)) == 0 and out.exists()


def test_cli_rejects_bad_options(dev600_data, tmp_path, capsys):
    from crossrank.cli.main import main

    out = tmp_path / "out.jsonl"
    assert main(cli_args(dev600_data, out, "--margin", "1", "--relative-margin", "0.1")) == 2  # argparse: not allowed together
    assert main(cli_args(dev600_data, out, "--range-min", "10", "--range-max", "10")) == 2
    assert "range_max" in capsys.readouterr().err and not out.exists()

"""The real MiniLM cross-encoder against sentence-transformers' CrossEncoder on 300 real DL19 pairs."""
from __future__ import annotations

import numpy as np
import pytest

from crossrank import CrossEncoder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dl19_pairs(data_dir):
    from crossrank.data import Collection, load_queries, load_run

    root = data_dir / "trec-dl19"
    queries = load_queries(root / "queries.dl19.tsv")
    run = load_run(root / "runs" / "run.dl19.bm25.top100.trec")
    collection = Collection.open(root / "collection.tsv")
    pairs = []
    for qid in sorted(run)[:3]:
        for pid in run[qid]:
            pairs.append((queries[qid], collection[pid]))
    assert len(pairs) == 300
    return pairs


@pytest.fixture(scope="module")
def st_model_dir(minilm_ce, tmp_path_factory):
    folder = tmp_path_factory.mktemp("crossrank-saved")
    minilm_ce.save(folder)
    return folder


def test_scores_equal_sentence_transformers(st_model_dir, dl19_pairs):
    from sentence_transformers import CrossEncoder as STCrossEncoder

    ours = CrossEncoder(st_model_dir)
    theirs = STCrossEncoder(str(st_model_dir))
    a = ours.predict(dl19_pairs, batch_size=32)
    b = theirs.predict(dl19_pairs, batch_size=32, show_progress_bar=False)
    np.testing.assert_allclose(a, b, atol=1e-4)
    # rank gives the same order as sentence-transformers' rank on one query's passages
    query = dl19_pairs[0][0]
    passages = [p for q, p in dl19_pairs if q == query]
    ours_rank = [r["corpus_id"] for r in ours.rank(query, passages)]
    theirs_rank = [r["corpus_id"] for r in theirs.rank(query, passages, show_progress_bar=False)]
    ours_scores = ours.predict([(query, p) for p in passages])
    # order agrees wherever the scores are not within float noise of each other
    gaps = np.abs(np.diff(np.sort(ours_scores)[::-1]))
    if gaps.min() > 1e-4:
        assert ours_rank == theirs_rank
    else:
        assert ours_rank[:10] == theirs_rank[:10]


def test_sentence_transformers_saved_model_loads_with_same_scores(minilm_dir, dl19_pairs, tmp_path):
    from sentence_transformers import CrossEncoder as STCrossEncoder

    st = STCrossEncoder(str(minilm_dir), num_labels=1, max_length=256)
    st.save(str(tmp_path / "st"))
    ours = CrossEncoder(tmp_path / "st")
    assert ours.activation == "sigmoid" and ours.max_length == 256  # read from the stored metadata
    np.testing.assert_allclose(ours.predict(dl19_pairs[:64]), st.predict(dl19_pairs[:64], show_progress_bar=False), atol=1e-4)


def test_crossrank_saved_model_keeps_activation_in_sentence_transformers(minilm_ce, dl19_pairs, tmp_path):
    from sentence_transformers import CrossEncoder as STCrossEncoder

    sig = CrossEncoder(minilm_ce.path, max_length=128, activation="sigmoid")
    sig.save(tmp_path / "sig")
    st = STCrossEncoder(str(tmp_path / "sig"))
    assert st.max_seq_length == 128
    np.testing.assert_allclose(st.predict(dl19_pairs[:32], show_progress_bar=False), sig.predict(dl19_pairs[:32]), atol=1e-4)

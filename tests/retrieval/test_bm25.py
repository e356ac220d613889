"""BM25Index on hand-made corpora: exact Lucene scores, certain rankings, ties, save/load, errors."""
from __future__ import annotations

import math
import random
import subprocess
import sys

import numpy as np
import pytest

from crossrank.data import rank_scores
from crossrank.data.records import Passage, Query
from crossrank.retrieval import Analyzer, BM25Config, BM25Index, NotAnIndexError

DOCS = [
    Passage("d1", "The cat sat on the mat."),
    Passage("d2", "Cats chase cats and dogs, and the dogs chase cats back."),
    Passage("d3", "A dog barked at the mailman."),
    Passage("d4", "Quantum chromodynamics describes the strong interaction between quarks and gluons."),
    Passage("d5", "The mat was red; the red mat was on the floor of the room."),
    Passage("d6", "Gluons bind quarks.", title="Strong force"),
]
# what the analyzer (stopwords "en", Snowball english) makes of DOCS, written out by hand
TERMS = {
    "d1": ["cat", "sat", "mat"],
    "d2": ["cat", "chase", "cat", "dog", "dog", "chase", "cat", "back"],
    "d3": ["dog", "bark", "mailman"],
    "d4": ["quantum", "chromodynam", "describ", "strong", "interact", "between", "quark", "gluon"],
    "d5": ["mat", "red", "red", "mat", "floor", "room"],
    "d6": ["strong", "forc", "gluon", "bind", "quark"],
}


def lucene_bm25(query: list[str], docs: dict[str, list[str]], k1: float, b: float) -> dict[str, float]:
    """Lucene (>= 8) BM25, straight from the formula: sum over query terms (repeats included) of
    idf * tf / (tf + k1 * (1 - b + b * dl / avgdl)), idf = ln(1 + (N - df + 0.5) / (df + 0.5)).

    This is the classic tf * (k1 + 1) / (tf + k1 * ...) form divided by the constant (k1 + 1),
    which Lucene 8 dropped (rankings are identical); bm25s's "lucene" method and pyserini do the same.
    """
    n = len(docs)
    avgdl = sum(len(t) for t in docs.values()) / n
    scores = {}
    for doc_id, terms in docs.items():
        total = 0.0
        for term in query:
            df = sum(term in t for t in docs.values())
            tf = terms.count(term)
            if tf == 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            total += idf * tf / (tf + k1 * (1 - b + b * len(terms) / avgdl))
        if total > 0:
            scores[doc_id] = total
    return scores


@pytest.fixture(scope="module")
def index() -> BM25Index:
    return BM25Index.build(DOCS, show_progress=False)


def test_analyzer_matches_hand_written_terms():
    analyzer = Analyzer(BM25Config())
    for doc in DOCS:
        text = f"{doc.title} {doc.text}" if doc.title else doc.text
        assert analyzer.analyze(text) == TERMS[doc.doc_id]


@pytest.mark.parametrize("k1,b", [(0.9, 0.4), (1.2, 0.75), (2.0, 1.0), (0.5, 0.0)])
@pytest.mark.parametrize("query", ["cat", "cats and dogs", "red mat", "strong quarks gluons", "dog dog chase", "the mat of cats"])
def test_scores_equal_hand_computed_lucene_bm25(k1, b, query):
    idx = BM25Index.build(DOCS, BM25Config(k1=k1, b=b), show_progress=False)
    got = idx.search([Query("q", query)], k=100, show_progress=False)["q"]
    expected = lucene_bm25(Analyzer(BM25Config()).analyze(query), TERMS, k1, b)
    assert set(got) == set(expected)
    for doc_id, score in expected.items():
        assert got[doc_id] == pytest.approx(score, abs=1e-5), doc_id
    # the classic (k1 + 1) form ranks identically: it is the same score times a constant
    classic = {d: s * (k1 + 1) for d, s in expected.items()}
    assert sorted(classic, key=lambda d: (classic[d], d), reverse=True) == list(got)


def test_certain_ranking(index):
    run = index.search([Query("q1", "cat"), Query("q2", "quark gluon"), Query("q3", "barking dog mailman")],
                       k=10, show_progress=False)
    assert list(run["q1"]) == ["d2", "d1"]  # tf 3 beats tf 1 (d2 is longer, but not 3x with b=0.4)
    assert list(run["q2"]) == ["d6", "d4"]  # same terms, d6 is much shorter
    assert list(run["q3"])[0] == "d3"
    assert list(run["q3"]) == ["d3", "d2"]
    for docs in run.values():  # best first, strictly positive
        scores = list(docs.values())
        assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)


def test_title_is_indexed(index):
    assert list(index.search([Query("q", "force")], show_progress=False)["q"]) == ["d6"]


def test_k_limits_and_only_matching_documents(index):
    assert len(index.search([Query("q", "cat dog mat")], k=2, show_progress=False)["q"]) == 2
    # only 4 documents contain any of the terms: k larger than that (or than the corpus) is fine
    assert set(index.search([Query("q", "cat dog mat")], k=1000, show_progress=False)["q"]) == {"d1", "d2", "d3", "d5"}


def test_queries_without_known_terms_get_empty_results(index):
    run = index.search([Query("unknown", "zebra xylophone"), Query("stop", "the and of"), Query("empty", "")],
                       show_progress=False)
    assert run == {"unknown": {}, "stop": {}, "empty": {}}


def test_equal_scores_rank_by_doc_id_whatever_the_corpus_order():
    ids = ["b", "a", "10", "9", "c2", "c1"]
    passages = [Passage(i, "identical text about tea") for i in ids] + [Passage("z", "coffee only")]
    expected = ["c2", "c1", "b", "a", "9", "10"]  # doc id descending in code point order, as trec_eval
    for seed in range(5):
        shuffled = passages[:]
        random.Random(seed).shuffle(shuffled)
        idx = BM25Index.build(shuffled, show_progress=False)
        for k in range(1, 7):
            run = idx.search([Query("q", "tea")], k=k, show_progress=False)
            assert list(run["q"]) == expected[:k]
    # the same order the run writer (and trec_eval) gives these scores
    assert [doc_id for doc_id, _ in rank_scores(run["q"])] == expected


def test_threads_and_batches_do_not_change_results(index):
    queries = [Query(f"q{i}", text) for i, text in enumerate(
        ["cat", "dog", "red mat floor", "quarks", "strong interaction", "chase", "nothing here", "room"] * 5)]
    reference = index.search(queries, show_progress=False, n_threads=1)
    for n_threads, batch_size in [(2, 3), (2, 1024), (4, 1)]:
        run = index.search(queries, show_progress=False, n_threads=n_threads, batch_size=batch_size)
        assert run == reference
        assert list(run) == list(reference) and all(list(run[q]) == list(reference[q]) for q in run)


def test_queries_may_be_a_generator(index):
    run = index.search((Query(str(i), t) for i, t in enumerate(["cat", "dog"])), show_progress=True)
    assert list(run) == ["0", "1"]


@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_round_trip(index, tmp_path, mmap):
    queries = [Query("a", "cat"), Query("b", "red mat"), Query("c", "gluon force"), Query("d", "zebra")]
    before = index.search(queries, show_progress=False)
    target = index.save(tmp_path / "idx")
    assert BM25Index.is_index(target)
    loaded = BM25Index.load(target, mmap=mmap)
    assert loaded.config == index.config and len(loaded) == len(index)
    assert loaded.doc_ids.tolist() == [d.doc_id for d in DOCS]
    after = loaded.search(queries, show_progress=False)
    assert after == before and all(list(after[q]) == list(before[q]) for q in before)
    assert isinstance(loaded._retriever.scores["data"], np.memmap) is mmap


def test_save_replaces_an_index_and_keeps_metadata(tmp_path):
    small = BM25Index.build(DOCS[:2], show_progress=False, metadata={"corpus": "first"})
    small.save(tmp_path / "idx")
    BM25Index.build(DOCS, show_progress=False, metadata={"corpus": "second"}).save(tmp_path / "idx")
    loaded = BM25Index.load(tmp_path / "idx")
    assert len(loaded) == len(DOCS) and loaded.metadata == {"corpus": "second"}
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]  # no temporary directories left behind


def test_failed_save_keeps_the_old_index(tmp_path, monkeypatch):
    BM25Index.build(DOCS[:2], show_progress=False, metadata={"corpus": "first"}).save(tmp_path / "idx")
    before = {p.name: p.read_bytes() for p in (tmp_path / "idx").iterdir()}
    second = BM25Index.build(DOCS, show_progress=False, metadata={"corpus": "second"})

    def crash(folder):
        raise OSError("disk full")

    monkeypatch.setattr(second._doc_ids, "save", crash)  # the last file written: the rest is staged already
    with pytest.raises(OSError, match="disk full"):
        second.save(tmp_path / "idx")
    assert {p.name: p.read_bytes() for p in (tmp_path / "idx").iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]
    assert BM25Index.load(tmp_path / "idx").metadata == {"corpus": "first"}


def test_custom_config_survives_save_load(tmp_path):
    config = BM25Config(k1=1.2, b=0.75, stopwords=None, stemmer=None)
    idx = BM25Index.build(DOCS, config, show_progress=False)
    assert idx.search([Query("q", "cats")], show_progress=False)["q"].keys() == {"d2"}  # no stemming: cat != cats
    assert idx.search([Query("q", "the")], show_progress=False)["q"]  # no stopwords: "the" matches
    loaded = BM25Index.load(idx.save(tmp_path / "idx"))
    assert loaded.config == config
    assert loaded.search([Query("q", "cats the")], show_progress=False) == idx.search([Query("q", "cats the")], show_progress=False)


def test_empty_passages_are_kept_but_never_retrieved():
    idx = BM25Index.build([Passage("e", ""), Passage("x", "some text"), Passage("s", "the of and")], show_progress=False)
    assert len(idx) == 3 and idx.doc_ids.tolist() == ["e", "x", "s"]
    assert list(idx.search([Query("q", "text")], show_progress=False)["q"]) == ["x"]


# ---------------------------------------------------------------------------- errors
def test_empty_corpus_is_an_error():
    with pytest.raises(ValueError, match="empty corpus"):
        BM25Index.build([], show_progress=False)
    with pytest.raises(ValueError, match="indexable term"):
        BM25Index.build([Passage("a", ""), Passage("b", "the a of")], show_progress=False)


def test_unknown_stemmer_and_stopwords_are_errors():
    with pytest.raises(ValueError, match="unknown stemmer 'klingon'.*english"):
        BM25Index.build(DOCS, BM25Config(stemmer="klingon"), show_progress=False)
    with pytest.raises(ValueError, match="unknown stopwords 'xx'"):
        BM25Index.build(DOCS, BM25Config(stopwords="xx"), show_progress=False)


@pytest.mark.parametrize("kwargs,match", [({"k1": -1}, "k1"), ({"b": 1.5}, "`b` expects a number >= 0 and <= 1"), ({"method": "bm25+"}, "unknown BM25 method")])
def test_invalid_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BM25Config(**kwargs)


def test_config_dict_round_trip():
    config = BM25Config(k1=1.1, b=0.3, stemmer="porter")
    assert BM25Config.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown BM25Config fields: colour"):
        BM25Config.from_dict({"colour": "red"})


def test_duplicate_or_empty_ids_are_errors(index):
    with pytest.raises(ValueError, match="duplicate doc id 'd1'"):
        BM25Index.build([Passage("d1", "a b"), Passage("d1", "c d")], show_progress=False)
    with pytest.raises(ValueError, match="invalid doc id"):
        BM25Index.build([Passage("", "a b")], show_progress=False)
    with pytest.raises(ValueError, match="duplicate query id 'q'"):
        index.search([Query("q", "cat"), Query("q", "dog")], show_progress=False)


@pytest.mark.parametrize("k", [0, -5, 2.5, True])
def test_invalid_k(index, k):
    with pytest.raises(ValueError, match="k must be a positive int"):
        index.search([Query("q", "cat")], k=k, show_progress=False)


def test_loading_a_directory_that_is_not_an_index(tmp_path):
    with pytest.raises(NotAnIndexError, match="does not exist") as err:
        BM25Index.load(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    with pytest.raises(NotAnIndexError, match=r"not a crossrank BM25 index, missing crossrank_bm25\.json, .*data\.csc\.index\.npy") as err:
        BM25Index.load(tmp_path / "notes")
    assert str(tmp_path / "notes") in str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotAnIndexError, match="not a directory"):
        BM25Index.load(tmp_path / "file")


def test_incomplete_index_names_the_missing_file(index, tmp_path):
    target = index.save(tmp_path / "idx")
    (target / "vocab.tokenizer.json").unlink()
    assert not BM25Index.is_index(target)
    with pytest.raises(NotAnIndexError, match=r"incomplete, missing vocab\.tokenizer\.json"):
        BM25Index.load(target)


def test_save_refuses_to_overwrite_other_files(index, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "important.txt").write_text("keep me")
    with pytest.raises(ValueError, match="refusing to save"):
        index.save(tmp_path / "data")
    assert (tmp_path / "data" / "important.txt").read_text() == "keep me"
    index.save(tmp_path / "empty_dir_ok")  # an empty existing directory is fine
    (tmp_path / "empty").mkdir()
    index.save(tmp_path / "empty")
    assert BM25Index.is_index(tmp_path / "empty")


def test_retrieval_does_not_import_torch():
    code = "import sys, crossrank.retrieval, crossrank.cli.retrieve; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_non_ascii_doc_ids_survive_save_and_mmap_load(tmp_path):
    ids = ["café", "中文-1", "naïve", "plain", "ü"]
    idx = BM25Index.build([Passage(i, "shared words") for i in ids] + [Passage("x", "other")], show_progress=False)
    loaded = BM25Index.load(idx.save(tmp_path / "idx"), mmap=True)
    assert loaded.doc_ids.tolist() == ids + ["x"] and loaded.doc_ids[1] == "中文-1"
    run = loaded.search([Query("q", "shared")], show_progress=False)
    assert list(run["q"]) == sorted(ids, reverse=True)  # equal scores: doc id descending, by code point

"""Pseudo-queries from passages: shapes, skip counts, and candidate lists on real MS MARCO passages."""
from __future__ import annotations

import random

import pytest

from crossrank.data import Collection

from crossrank.data.records import Passage
from crossrank.training.corpus_examples import PseudoDataConfig, held_out_passages, pseudo_lists
from crossrank.training.pseudo_queries import make_pseudo_queries, sentence_query, split_sentences, terms_query


def test_split_sentences_and_inverse_cloze_removes_the_query_sentence():
    text = "Cats are small mammals. They purr when content. Dogs bark at strangers loudly."
    assert split_sentences(text) == ["Cats are small mammals.", "They purr when content.", "Dogs bark at strangers loudly."]
    query, positive = sentence_query(text, random.Random(1), max_words=3, min_words=3)
    assert len(query.split()) <= 3
    sentence = next(s for s in split_sentences(text) if s.startswith(query))
    assert sentence not in positive and positive.count(".") == 2


def test_sentences_joined_without_a_space_are_split(data_dir):
    # SciFact abstracts join sentences so ("... disabilities.A line scan ..."); abbreviations and decimals stay whole
    text = "Growth can affect development.A line scan was applied (n = 7).To assess it, e.g.U.S. data at 1.8 ms were used."
    assert split_sentences(text) == ["Growth can affect development.", "A line scan was applied (n = 7).",
                                     "To assess it, e.g.U.S. data at 1.8 ms were used."]
    from crossrank.data import iter_corpus

    abstracts = [p.text for _, p in zip(range(300), iter_corpus(data_dir / "scifact" / "corpus.jsonl"))]
    assert sum(len(split_sentences(t)) > 1 for t in abstracts) > 0.9 * len(abstracts)


def test_terms_query_keeps_salient_words_in_passage_order():
    idf = {"zebra": 5.0, "stripes": 4.0, "savanna": 3.0, "animal": 1.0, "lives": 0.5}
    query = terms_query("The zebra is an animal that lives on the savanna with stripes.", random.Random(0), idf, 3, 3)
    assert query == "zebra savanna stripes"


def test_skips_are_counted_by_reason():
    passages = [
        Passage("1", ""),
        Passage("2", "Too short to use."),
        Passage("3", "A single long sentence that goes on and on without any stop at all here"),
        Passage("4", "First sentence of a passage here. Second sentence with more words in it. Third one ends it."),
        Passage("5", "First sentence of a passage here. Second sentence with more words in it. Third one ends it."),
        Passage("6", "Held out passage sentence one here. Held out passage sentence two here too. And three."),
    ]
    queries, counts = make_pseudo_queries(passages, "sentence", exclude={"6"})
    assert [q.doc_id for q in queries] in (["4"], ["5"])
    assert counts.made == 1 and counts.passages == 6
    assert counts.skipped == {"empty": 1, "shorter than 12 words": 1, "one sentence": 1, "duplicate text": 1, "held out": 1}
    assert "1 pseudo-queries from 6 passages" in counts.summary()


def test_bad_settings_and_a_corpus_with_no_usable_passage(tmp_path):
    with pytest.raises(ValueError, match="strategy must be one of"):
        make_pseudo_queries([], "generate")
    with pytest.raises(ValueError, match="limit must be >= 1"):
        make_pseudo_queries([], "terms", limit=0)
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text("a\tshort one\nb\t\nc\tanother short text\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"corpus.tsv: no passage gave a pseudo-query \(0 pseudo-queries from 3 passages; skipped"):
        pseudo_lists(PseudoDataConfig(str(corpus)), show_progress=False)


@pytest.mark.parametrize("strategy", ["sentence", "terms"])
def test_real_msmarco_passages_give_lists_without_held_out_passages(data_dir, strategy):
    d = data_dir / "msmarco-dev600"
    cfg = PseudoDataConfig(str(d / "collection.tsv"), strategy=strategy, num_queries=300, num_candidates=7,
                           exclude_run=str(d / "run.bm25.top20.trec"), exclude_split=str(d / "split.tsv"))
    lists, counts = pseudo_lists(cfg, show_progress=False)
    original = Collection.open(d / "collection.tsv")
    held_out = held_out_passages(cfg.exclude_run, cfg.exclude_split, "tune")
    assert 1500 < len(held_out) <= 2000  # the 100 tune queries' top-20
    assert len(lists) == counts.made and 250 <= len(lists) <= 300
    for c in lists:
        assert c.query_id == f"pq-{c.doc_ids[0]}"  # the source passage first
        assert 2 <= len(c) <= 8 and len(set(c.doc_ids)) == len(c)
        assert not held_out & set(c.doc_ids)
        assert c.first_stage[1:] == sorted(c.first_stage[1:], reverse=True)  # neighbours best first
        if strategy == "sentence":
            source = " ".join(original[c.doc_ids[0]].split())
            assert source.count(c.query) > c.texts[0].count(c.query)  # the query sentence was cut out of its positive
        else:
            assert all(w in c.texts[0].lower() for w in c.query.split())
    # the source passage's BM25 score is a real one: most sources rank among their neighbours' scores or above
    top = sum(c.first_stage[0] >= c.first_stage[1] for c in lists) / len(lists)
    assert top > (0.5 if strategy == "terms" else 0.1)


def test_beir_corpus_lists_score_title_and_text_as_the_model_will(data_dir):
    sf = data_dir / "scifact" / "corpus.jsonl"
    lists, counts = pseudo_lists(PseudoDataConfig(str(sf), num_queries=20, num_candidates=5, seed=3), show_progress=False)
    corpus = Collection.open(sf)
    assert len(lists) == counts.made == 20
    sources = {c.doc_ids[0]: c.texts[0] for c in lists}  # another query's source is a neighbour without its query sentence
    for c in lists:
        for doc_id, text in zip(c.doc_ids[1:], c.texts[1:]):
            assert text == sources.get(doc_id, corpus[doc_id])  # title + " " + abstract, as reranking sees it
        title = corpus.title(c.doc_ids[0])
        assert c.texts[0].startswith(title + " ") and c.query not in c.texts[0][len(title):]

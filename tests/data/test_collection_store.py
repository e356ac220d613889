from __future__ import annotations

import gc
import gzip
import json
import tracemalloc

import pytest

from crossrank.data import Collection, FormatError, Passage, iter_corpus


def _text_bytes(path) -> int:
    return sum(len(p.title.encode()) + len(p.text.encode()) for p in iter_corpus(path))


def test_collection_memory_is_at_most_twice_the_text(shared_data):
    path = shared_data / "trec-dl19" / "collection.tsv"
    text_bytes = _text_bytes(path)
    gc.collect()
    tracemalloc.start()
    try:
        coll = Collection.open(path)
        gc.collect()
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(coll) == 10852
    assert current <= 2 * text_bytes, (current, text_bytes)
    assert coll.nbytes <= text_bytes + 24 * len(coll)  # blob + int64 offsets + int64 ids (+ int32 order)


def test_collection_lookups_return_exact_text(shared_data):
    path = shared_data / "trec-dl19" / "collection.tsv"
    coll = Collection.open(path)
    expected = {}
    with open(path, encoding="utf-8", newline="\n") as handle:
        for line in handle:
            pid, text = line.rstrip("\n").split("\t", 1)
            expected[pid] = text
    assert len(coll) == len(expected)
    assert all(coll[pid] == text for pid, text in expected.items())
    assert list(coll) == list(expected)  # file order
    assert "1722" in coll and coll.title("1722") == ""
    assert "01722" not in coll and "nope" not in coll and 1722 not in coll
    assert coll.get("99999999999") is None and coll.get("x", "dflt") == "dflt"
    with pytest.raises(KeyError):
        coll["99999999999"]


def test_collection_beir_joins_title_and_text(shared_data):
    coll = Collection.open(shared_data / "scifact" / "corpus.jsonl")
    assert len(coll) == 5183
    title = coll.title("4983")
    assert title.startswith("Microstructural development of human newborn")
    assert coll["4983"] == f"{title} {coll.text('4983')}"
    assert coll.passage("4983") == Passage("4983", coll.text("4983"), title)


def test_collection_string_ids_unsorted_gz_and_empty_title(tmp_path):
    rows = [{"_id": "b-2", "title": "", "text": "second"}, {"_id": "a-1", "title": "T", "text": "first é"},
            {"_id": "07", "text": "zero seven"}, {"_id": "7", "title": "Seven", "text": ""}]
    path = tmp_path / "corpus.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    coll = Collection.open(path)
    assert coll["b-2"] == "second" and coll["a-1"] == "T first é"
    assert coll["07"] == "zero seven" and coll["7"] == "Seven"
    assert list(coll) == ["b-2", "a-1", "07", "7"]
    assert "a-10" not in coll and "a" not in coll and "zzzzzzzzzzzzzzzzzz" not in coll


def test_collection_numeric_unsorted_ids(tmp_path):
    path = tmp_path / "collection.tsv"
    path.write_text("30\tc\n4\ta\n100\tb\n")
    coll = Collection.open(path)
    assert [coll[i] for i in ("4", "30", "100")] == ["a", "c", "b"]
    assert list(coll) == ["30", "4", "100"]
    assert "5" not in coll and "-4" not in coll


def test_collection_duplicate_id_is_an_error(tmp_path):
    path = tmp_path / "collection.tsv"
    path.write_text("3\ta\n1\tb\n3\tc\n")
    with pytest.raises(FormatError, match=r"collection\.tsv: duplicate doc id '3'"):
        Collection.open(path)


def test_collection_malformed_line(tmp_path):
    path = tmp_path / "collection.tsv"
    path.write_text("1\ta\n2 b\n")
    with pytest.raises(FormatError, match=r"collection\.tsv:2: expected 'pid<TAB>text', found no tab"):
        Collection.open(path)


def test_empty_collection(tmp_path):
    path = tmp_path / "collection.tsv"
    path.write_text("")
    coll = Collection.open(path)
    assert len(coll) == 0 and "1" not in coll and list(coll) == []

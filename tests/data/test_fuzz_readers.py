"""Property-based tests of every reader on mutated copies of real shared files.

For any mutation of a real line (bytes deleted, inserted or replaced: tabs, newlines, quotes,
braces, invalid UTF-8, a byte-order mark, NaN, huge numbers), a reader either returns records or
raises `FormatError` naming the file; never another exception. Where it returns records, every
record of a line that was not touched is there unchanged: a bad line never silently changes what
the good ones say. Bounded (a few dozen examples per reader) so the suite stays fast; set
CROSSRANK_FUZZ_EXAMPLES for a longer profile.
"""
from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossrank.data import FormatError, iter_corpus, iter_rerank_jsonl, load_qrels, load_queries, load_run

EXAMPLES = int(os.environ.get("CROSSRANK_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

PIECES = [b"\t", b"\n", b"\r", b" ", b'"', b"{", b"}", b"[", b"]", b":", b",", b"\\", b"\x00", b"\xff", b"\xef\xbb\xbf",
          b"\xc3", b"nan", b"inf", b"-1", b"1e999", b"0", b"Q0", b"query-id", b'"_id"', b'"text"', b"null", b"\xe2\x80\xa8"]


def _data_root() -> Path:
    return Path(os.environ.get("CROSSRANK_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def _head(path: Path, n: int) -> list[bytes]:
    with path.open("rb") as f:
        return [line.rstrip(b"\n") for line in itertools.islice(f, n)]


@st.composite
def mutations(draw, n_lines: int):
    """(line index, list of edits) where an edit is (kind, position fraction, bytes)."""
    index = draw(st.integers(0, n_lines - 1))
    edits = draw(st.lists(st.tuples(st.sampled_from(["insert", "delete", "replace"]), st.floats(0, 1),
                                    st.lists(st.sampled_from(PIECES) | st.binary(min_size=1, max_size=3), min_size=1, max_size=3)),
                          min_size=1, max_size=3))
    return index, edits


def _mutate(line: bytes, edits) -> bytes:
    for kind, where, pieces in edits:
        at = int(where * len(line))
        blob = b"".join(pieces)
        if kind == "insert":
            line = line[:at] + blob + line[at:]
        elif kind == "delete":
            line = line[:at] + line[at + len(blob):]
        else:
            line = line[:at] + blob + line[at + len(blob):]
    return line


def _outcome(reader, lines: list[bytes], name: str):
    """The reader's records for these lines, or the FormatError it raised; any other exception fails the test."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(b"\n".join(lines) + b"\n")
        try:
            return reader(path)
        except FormatError as exc:
            assert str(exc).startswith(str(path)), f"the error does not name the file: {exc}"
            return exc


def _fuzz(reader, lines: list[bytes], name: str, mutation, kept):
    """The property: records or FormatError; records of untouched lines unchanged (`kept` compares them).
    Returns (the records of the real lines, the outcome of the mutated ones)."""
    index, edits = mutation
    reference = _outcome(reader, lines, name)
    assert not isinstance(reference, FormatError), reference
    mutated = list(lines)
    mutated[index] = _mutate(lines[index], edits)
    got = _outcome(reader, mutated, name)
    if not isinstance(got, FormatError):
        kept(reference, got, [i for i in range(len(lines)) if i != index], lines)
    return reference, got


# ------------------------------------------------------------------ the files
DL19 = _data_root() / "trec-dl19"
SCIFACT = _data_root() / "scifact"
pytestmark = pytest.mark.skipif(not DL19.is_dir() or not SCIFACT.is_dir(), reason="shared data not found")

QUERIES_TSV = _head(DL19 / "queries.dl19.tsv", 12) if DL19.is_dir() else []
QUERIES_JSONL = _head(SCIFACT / "queries.jsonl", 12) if SCIFACT.is_dir() else []
QRELS_TREC = _head(DL19 / "qrels.dl19-passage.txt", 20) if DL19.is_dir() else []
QRELS_BEIR = _head(SCIFACT / "qrels" / "test.tsv", 15) if SCIFACT.is_dir() else []
RUN_TREC = _head(DL19 / "runs" / "run.dl19.bm25.top100.trec", 20) if DL19.is_dir() else []
CORPUS_TSV = _head(DL19 / "collection.tsv", 8) if DL19.is_dir() else []
CORPUS_JSONL = _head(SCIFACT / "corpus.jsonl", 5) if SCIFACT.is_dir() else []


def _same_entries(reference: dict, got: dict, untouched, lines, key_of) -> None:
    for i in untouched:
        key = key_of(lines[i])
        if key is None:
            continue
        assert key[0] in got, f"line {i + 1}'s record is gone"
        assert got[key[0]] == reference[key[0]] or (len(key) > 1 and got[key[0]].get(key[1]) == reference[key[0]][key[1]]), (
            f"line {i + 1}'s record changed")


def _tsv_key(line: bytes):
    return (line.split(b"\t", 1)[0].decode(),)


def _json_key(line: bytes):
    import json

    return (json.loads(line)["_id"],)


def _pair_key(sep=None):
    def key(line: bytes):
        fields = line.split(sep)
        if fields[0] == b"query-id":
            return None
        return (fields[0].decode(), fields[-2 if len(fields) == 3 else 2].decode())

    return key


def _qrel_pairs(key):
    def kept(reference, got, keep, lines):
        for i in keep:
            k = key(lines[i])
            if k is not None:
                assert got.get(k[0], {}).get(k[1]) == reference[k[0]][k[1]], f"line {i + 1}'s judgment changed"

    return kept


def _run_scores(reference, got, keep, lines):
    for i in keep:
        qid, _, doc, _, score, _ = lines[i].split()
        assert got.get(qid.decode(), {}).get(doc.decode()) == float(score), f"line {i + 1}'s score changed"


def _entries(key):
    return lambda reference, got, keep, lines: _same_entries(reference, got, keep, lines, key)


def _corpus(path):
    return {p.doc_id: (p.title, p.text) for p in iter_corpus(path)}


def _rerank_lines() -> list[bytes]:
    import json

    lines = []
    for line in RUN_TREC[:6]:
        qid, _, doc, _, score, _ = line.decode().split()
        lines.append(json.dumps({"query_id": qid, "query": f"query {qid}", "text_id": doc, "text": f"passage {doc}",
                                 "score": float(score)}).encode())
    return lines


RERANK_JSONL = _rerank_lines() if DL19.is_dir() else []


def _search_response_lines() -> list[bytes]:
    """The first DL19 BM25 queries as Elasticsearch / OpenSearch response bodies, one per line."""
    import json

    by_query: dict[str, list[tuple[str, float]]] = {}
    for i, line in enumerate(RUN_TREC):  # the run's head is one query: its hits as four queries of five
        qid, _, doc, _, score, _ = line.decode().split()
        by_query.setdefault(f"{qid}-{i // 5}", []).append((doc, float(score)))
    return [json.dumps({"query_id": qid, "took": 3, "hits": {"max_score": hits[0][1], "hits": [
        {"_index": "msmarco-passage", "_id": d, "_score": sc} for d, sc in hits]}}).encode() for qid, hits in by_query.items()]


SEARCH_JSONL = _search_response_lines() if DL19.is_dir() else []


def _search_hits(reference, got, keep, lines):
    import json

    for i in keep:
        body = json.loads(lines[i])
        assert got.get(body["query_id"]) == reference[body["query_id"]], f"line {i + 1}'s hits changed"


def _rerank_items(reference, got, keep, lines):
    for i in keep:
        assert reference[i] in got, f"line {i + 1}'s item changed"


# name -> (reader, real lines, file name, what must stay unchanged)
CASES = {
    "queries-tsv": (load_queries, QUERIES_TSV, "queries.tsv", _entries(_tsv_key)),
    "queries-jsonl": (load_queries, QUERIES_JSONL, "queries.jsonl", _entries(_json_key)),
    "qrels-trec": (load_qrels, QRELS_TREC, "qrels.txt", _qrel_pairs(_pair_key())),
    "qrels-beir": (load_qrels, QRELS_BEIR, "test.tsv", _qrel_pairs(_pair_key(b"\t"))),
    "run-trec": (load_run, RUN_TREC, "run.trec", _run_scores),
    "corpus-tsv": (_corpus, CORPUS_TSV, "collection.tsv", _entries(_tsv_key)),
    "corpus-jsonl": (_corpus, CORPUS_JSONL, "corpus.jsonl", _entries(_json_key)),
    "rerank-jsonl": (lambda p: list(iter_rerank_jsonl(p)), RERANK_JSONL, "rerank.jsonl", _rerank_items),
    "search-responses": (lambda p: load_run(p, format="search-jsonl"), SEARCH_JSONL, "responses.jsonl", _search_hits),
}


@pytest.mark.parametrize("case", sorted(CASES))
@FUZZ
@given(data=st.data())
def test_reader_on_mutated_real_lines(case, data):
    reader, lines, name, kept = CASES[case]
    reference, got = _fuzz(reader, lines, name, data.draw(mutations(len(lines))), kept)
    assert len(reference) > 0  # the real lines are read as records
    assert isinstance(got, (FormatError, dict, list)), f"{case}: neither records nor a FormatError: {got!r}"


def test_the_property_catches_a_changed_record():
    """The check itself can fail: a reader that drops a line's record is caught."""
    with pytest.raises(AssertionError, match="record is gone"):
        _fuzz(lambda p: {}, QUERIES_TSV[:2], "queries.tsv", (0, [("insert", 0.5, [b"x"])]),
              lambda r, g, keep, lines: _same_entries({"a": 1}, g, keep, lines, _tsv_key))

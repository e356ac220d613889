from __future__ import annotations

import pytest

from crossrank.data import (
    FormatError,
    RunWriter,
    ScoredDoc,
    convert_run,
    iter_run,
    load_run,
    rank_scores,
    write_run,
)


def _lines(path):
    return path.read_text().splitlines()


def test_rank_scores_tie_break_is_trec_eval_order():
    scores = {"9": 1.0, "10": 1.0, "b": 2.0, "a": 2.0, "z": 0.5, "c": 1.0 + 1e-9}
    # score desc; equal float32 scores (1.0 and 1.0+1e-9) tie; ties by doc id DESCENDING as strings
    assert [d for d, _ in rank_scores(scores)] == ["b", "a", "c", "9", "10", "z"]
    assert [d for d, _ in rank_scores(scores, depth=2)] == ["b", "a"]


def test_iter_run_trec_real(shared_data):
    path = shared_data / "trec-dl19" / "runs" / "run.dl19.bm25.top100.trec"
    first = next(iter_run(path))
    assert first == ScoredDoc("264014", "5611210", 15.780599594116211)
    run = load_run(path)
    assert len(run) == 43 and all(len(docs) == 100 for docs in run.values())


def test_msmarco_format_score_is_minus_rank(tmp_path):
    path = tmp_path / "run.tsv"
    path.write_text("1\td3\t1\n1\td1\t2\n2\td2\t1\n")
    assert list(iter_run(path)) == [ScoredDoc("1", "d3", -1.0), ScoredDoc("1", "d1", -2.0), ScoredDoc("2", "d2", -1.0)]
    assert [d for d, _ in rank_scores(load_run(path)["1"])] == ["d3", "d1"]


def test_write_run_trec_ranks_ties_and_depth(tmp_path):
    path = tmp_path / "run.trec"
    write_run(path, {"q2": {"a": 1.0, "b": 1.0, "c": 3.0}, "q1": {"x": 0.25}}, tag="t1", depth=2)
    assert _lines(path) == ["q2 Q0 c 1 3.0 t1", "q2 Q0 b 2 1.0 t1", "q1 Q0 x 1 0.25 t1"]


def test_write_run_from_scored_docs_msmarco(tmp_path):
    path = tmp_path / "run.tsv"
    docs = [ScoredDoc("1", "a", 0.1), ScoredDoc("2", "b", 5.0), ScoredDoc("1", "c", 0.7)]
    write_run(path, docs, format="msmarco")
    assert _lines(path) == ["1\tc\t1", "1\ta\t2", "2\tb\t1"]


def test_scores_round_trip_exactly(tmp_path):
    run = {"q": {"a": 0.1 + 0.2, "b": -1e-300, "c": 12345.678901234567}}
    path = tmp_path / "run.trec.gz"
    write_run(path, run)
    assert load_run(path) == run


def test_run_writer_streams_and_is_atomic(tmp_path):
    path = tmp_path / "run.trec"
    with RunWriter(path, tag="minilm") as writer:
        writer.write("q1", {"a": 2.0, "b": 3.0})
        writer.write("q2", [ScoredDoc("q2", "c", 1.0)])
        assert not path.exists()
        with pytest.raises(ValueError, match="already written"):
            writer.write("q1", {"z": 1.0})
        with pytest.raises(ValueError, match="passed while writing"):
            writer.write("q3", [ScoredDoc("q4", "c", 1.0)])
    assert _lines(path) == ["q1 Q0 b 1 3.0 minilm", "q1 Q0 a 2 2.0 minilm", "q2 Q0 c 1 1.0 minilm"]

    failing = tmp_path / "failing.trec"
    with pytest.raises(RuntimeError):
        with RunWriter(failing) as writer:
            writer.write("q1", {"a": 1.0})
            raise RuntimeError("model crashed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.trec"]


def test_writer_rejects_bad_values(tmp_path):
    with pytest.raises(ValueError, match="tag"):
        RunWriter(tmp_path / "r", tag="has space")
    with pytest.raises(ValueError, match="unknown run format"):
        RunWriter(tmp_path / "r", format="json")
    with pytest.raises(ValueError, match="NaN"):
        write_run(tmp_path / "r", {"q": {"a": float("nan")}})
    with pytest.raises(ValueError, match="doc id"):
        write_run(tmp_path / "r", {"q": {"a b": 1.0}})
    assert list(tmp_path.iterdir()) == []


def test_convert_round_trip_real(shared_data, tmp_path):
    src = shared_data / "trec-dl19" / "runs" / "run.dl19.bm25.top100.trec"
    msmarco, back = tmp_path / "run.tsv", tmp_path / "run.trec"
    convert_run(src, msmarco, "msmarco")
    assert _lines(msmarco)[0] == "264014\t5611210\t1"
    convert_run(msmarco, back, "trec", tag="bm25")
    assert _lines(back)[0] == "264014 Q0 5611210 1 -1.0 bm25"
    original = {q: [d for d, _ in rank_scores(docs)] for q, docs in load_run(src).items()}
    assert {q: [d for d, _ in rank_scores(docs)] for q, docs in load_run(back).items()} == original


def test_run_format_errors(tmp_path):
    path = tmp_path / "x.trec"
    path.write_text("1 Q0 d1 1 2.5 tag\n1 Q0 d2 2 1.5\n")
    with pytest.raises(FormatError) as info:
        list(iter_run(path))
    assert str(info.value) == (f"{path}:2: expected 6 whitespace-separated fields "
                               "(qid Q0 docid rank score tag), got 5")
    path.write_text("1 Q0 d1 1 high tag\n")
    with pytest.raises(FormatError, match=r"x\.trec:1: score must be a number, got 'high'"):
        list(iter_run(path))
    path.write_text("\n1 Q0 d1 1 2 tag\n1 Q0 d1 2 1 tag\n")
    with pytest.raises(FormatError, match=r"x\.trec:3: duplicate document 'd1' for query '1'"):
        load_run(path)
    path.write_text("1 d1 1 2\n")
    with pytest.raises(FormatError, match=r"x\.trec:1: cannot detect run format"):
        list(iter_run(path))
    path.write_text("1\td1\tfirst\n")
    with pytest.raises(FormatError, match=r"x\.trec:1: rank must be an integer, got 'first'"):
        list(iter_run(path))
    with pytest.raises(ValueError, match="unknown run format"):
        list(iter_run(path, format="csv"))

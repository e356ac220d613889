"""Inputs that used to give a silent wrong answer, on corrupted copies of the shared DL19 files:
each is now read right or refused with the file, line and what is wrong (exit 2 from the CLI)."""
from __future__ import annotations

import gzip

import pytest

from crossrank.cli.main import main
from crossrank.data import FormatError, load_qrels, load_queries, load_run
from crossrank.evaluation import evaluate

DEPTH = "8"


@pytest.fixture(scope="module")
def run3(dl19_head):
    """The DL19 BM25 run cut to 3 queries."""
    return dl19_head(3)


def _rerank(tiny_model_dir, dl19, run, out, *extra, queries=None):
    return main(["rerank", "--model", str(tiny_model_dir), "--run", str(run), "--corpus", str(dl19 / "collection.tsv"),
                 "--queries", str(queries or dl19 / "queries.dl19.tsv"), "--depth", DEPTH, "--output", str(out), *extra])


def test_a_byte_order_mark_is_not_part_of_the_first_id(dl19, tmp_path):
    qrels_path = dl19 / "qrels.dl19-passage.txt"
    with_bom = tmp_path / "qrels.bom.txt"
    with_bom.write_bytes(b"\xef\xbb\xbf" + qrels_path.read_bytes())
    run = load_run(dl19 / "runs" / "run.dl19.bm25.top100.trec")
    assert load_qrels(with_bom) == load_qrels(qrels_path)
    first = next(iter(load_qrels(qrels_path)))
    assert first in load_qrels(with_bom) and "\ufeff" + first not in load_qrels(with_bom)
    assert evaluate(load_qrels(with_bom), run, ["nDCG@10"], relevance_level=2) == evaluate(load_qrels(qrels_path), run, ["nDCG@10"],
                                                                                            relevance_level=2)


def test_invalid_utf8_names_file_and_line(dl19, tmp_path):
    lines = (dl19 / "queries.dl19.tsv").read_bytes().split(b"\n")
    lines[4] = lines[4][:8] + b"\xff\xfe" + lines[4][8:]
    bad = tmp_path / "queries.bad.tsv"
    bad.write_bytes(b"\n".join(lines))
    with pytest.raises(FormatError, match=r"queries\.bad\.tsv:5: not valid UTF-8 \(byte 9"):
        load_queries(bad)


def test_a_query_id_twice_with_two_texts_is_refused_naming_both_lines(dl19, tmp_path, tiny_model_dir, run3, capsys):
    lines = (dl19 / "queries.dl19.tsv").read_text().splitlines()
    qid = lines[0].split("\t")[0]
    twice = tmp_path / "queries.twice.tsv"
    twice.write_text("\n".join(lines + [f"{qid}\tanother text for the same id"]) + "\n")
    with pytest.raises(FormatError, match=rf":{len(lines) + 1}: query id '{qid}' is given again with another text \(first on line 1\)"):
        load_queries(twice)
    same = tmp_path / "queries.same.tsv"
    same.write_text("\n".join(lines + [lines[0]]) + "\n")
    assert load_queries(same) == load_queries(dl19 / "queries.dl19.tsv")  # the same text twice is one query
    assert _rerank(tiny_model_dir, dl19, run3, tmp_path / "x.trec", queries=twice) == 2
    assert "given again with another text" in capsys.readouterr().err and not (tmp_path / "x.trec").exists()


def test_a_pair_judged_twice_with_two_grades_is_refused(dl19, tmp_path):
    lines = (dl19 / "qrels.dl19-passage.txt").read_text().splitlines()
    qid, it, doc, rel = lines[10].split()
    twice = tmp_path / "qrels.twice.txt"
    twice.write_text("\n".join(lines + [f"{qid} {it} {doc} {(int(rel) + 1) % 4}"]) + "\n")
    with pytest.raises(FormatError, match=rf":{len(lines) + 1}: query '{qid}', passage '{doc}' is judged .* on line 11"):
        load_qrels(twice)


def test_depth_below_one_is_refused_before_the_model_loads(dl19, run3, tmp_path, capsys):
    for depth in ("0", "-1"):
        code = main(["rerank", "--model", str(tmp_path / "no-model-here"), "--run", str(run3), "--corpus", str(dl19 / "collection.tsv"),
                     "--queries", str(dl19 / "queries.dl19.tsv"), "--depth", depth, "--output", str(tmp_path / "x.trec")])
        assert code == 2 and f"argument --depth: expected an integer >= 1, got {depth}" in capsys.readouterr().err
    from crossrank.pipeline.rerank_job import CandidateSource

    with pytest.raises(ValueError, match="depth \\(candidates per query\\) expects an integer >= 1 or None, but got 0"):
        CandidateSource(run=run3, corpus=dl19 / "collection.tsv", queries=dl19 / "queries.dl19.tsv", depth=0)  # the library checks too


def test_empty_directory_and_corrupt_gzip_inputs_are_one_line_errors(dl19, run3, tmp_path, capsys):
    empty = tmp_path / "empty.trec"
    empty.write_text("\n")
    corrupt = tmp_path / "run.trec.gz"
    data = gzip.compress(run3.read_bytes())
    corrupt.write_bytes(data[: len(data) // 2])
    cases = [(empty, "holds no ranked passage"), (tmp_path, "is a directory; expected a file"), (corrupt, "corrupt gzip data")]
    for run, message in cases:
        code = main(["rerank", "--model", str(tmp_path / "no-model-here"), "--run", str(run), "--corpus", str(dl19 / "collection.tsv"),
                     "--queries", str(dl19 / "queries.dl19.tsv"), "--output", str(tmp_path / "x.trec")])
        err = capsys.readouterr().err
        assert code == 2 and message in err and str(run) in err and "Traceback" not in err
    assert main(["convert", "--input", str(empty), "--output", str(tmp_path / "y.trec"), "--to", "msmarco"]) == 2
    assert "holds no ranked passage: nothing to convert" in capsys.readouterr().err


def test_a_gz_output_is_gzip(dl19, run3, tiny_model_dir, tmp_path):
    plain, packed = tmp_path / "run.trec", tmp_path / "run.trec.gz"
    assert _rerank(tiny_model_dir, dl19, run3, plain) == 0
    assert _rerank(tiny_model_dir, dl19, run3, packed) == 0
    assert packed.read_bytes()[:2] == b"\x1f\x8b" and gzip.decompress(packed.read_bytes()) == plain.read_bytes()
    assert load_run(packed) == load_run(plain)
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.progress"))


def test_resume_refuses_other_settings_or_candidates_and_overwrite_starts_again(dl19, run3, tiny_model_dir, tmp_path, capsys, killed_after):
    out = tmp_path / "run.trec"
    reference = tmp_path / "reference.trec"
    assert _rerank(tiny_model_dir, dl19, run3, reference) == 0
    from crossrank import CrossEncoder
    from crossrank.pipeline import RerankConfig, from_run, rerank_run

    cands = list(from_run(run3, dl19 / "collection.tsv", dl19 / "queries.dl19.tsv", int(DEPTH)))
    model = CrossEncoder(tiny_model_dir)

    with pytest.raises(KeyboardInterrupt):
        rerank_run(killed_after(model), cands, out, RerankConfig(chunk_pairs=1))
    # another output format: refused, naming the setting, and the unfinished run is kept as it was
    partial = out.with_name(out.name + ".partial")
    kept = partial.read_bytes()
    assert _rerank(tiny_model_dir, dl19, run3, out, "--format", "msmarco") == 2
    assert "format 'trec' then, 'msmarco' now" in capsys.readouterr().err and partial.read_bytes() == kept
    # other candidates for a query already written (another depth): refused
    assert main(["rerank", "--model", str(tiny_model_dir), "--run", str(run3), "--corpus", str(dl19 / "collection.tsv"),
                 "--queries", str(dl19 / "queries.dl19.tsv"), "--depth", "5", "--output", str(out)]) == 2
    assert f"query {cands[0].query_id!r} was reranked before from other candidates" in capsys.readouterr().err
    assert partial.read_bytes() == kept and not out.exists()
    # the same settings resume to the uninterrupted run; --overwrite starts again from nothing
    assert _rerank(tiny_model_dir, dl19, run3, out) == 0
    assert "1 done before resume" in capsys.readouterr().out
    resumed, expected = load_run(out), load_run(reference)  # batched otherwise: equal to float noise
    assert list(resumed) == list(expected)
    for qid in expected:
        assert resumed[qid] == pytest.approx(expected[qid], rel=1e-4, abs=1e-6)
    with pytest.raises(KeyboardInterrupt):
        rerank_run(killed_after(model), cands, out, RerankConfig(chunk_pairs=1))
    assert _rerank(tiny_model_dir, dl19, run3, out, "--format", "msmarco", "--overwrite") == 0
    assert "done before resume" not in capsys.readouterr().out
    assert len(load_run(out)) == 3


def test_an_output_that_cannot_be_written_fails_before_the_model_loads(dl19, run3, tmp_path, capsys):
    import os

    args = ["rerank", "--model", str(tmp_path / "no-model-here"), "--run", str(run3), "--corpus", str(dl19 / "collection.tsv"),
            "--queries", str(dl19 / "queries.dl19.tsv")]
    assert main([*args, "--output", str(tmp_path)]) == 2
    assert "is a directory; expected an output file name" in capsys.readouterr().err
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main([*args, "--output", str(blocker / "run.trec")]) == 2
    assert f"{blocker} is not a directory" in capsys.readouterr().err
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main([*args, "--output", str(locked / "sub" / "run.trec")]) == 2
        assert f"{locked} is not writable" in capsys.readouterr().err


@pytest.mark.slow
def test_kill_9_at_a_random_point_then_resume_gives_the_same_bytes(dl19, tiny_model_dir, tmp_path):
    """`crossrank rerank` killed with SIGKILL after its first written chunk, at a random moment,
    resumes to exactly the uninterrupted run (three chunks of DL19's 43 queries x 100)."""
    import random
    import signal
    import subprocess
    import sys
    import time

    first_stage = dl19 / "runs" / "run.dl19.bm25.top100.trec"

    def command(out):
        code = "import sys; from crossrank.cli.main import main; sys.exit(main(sys.argv[1:]))"
        return [sys.executable, "-c", code, "rerank", "--model", str(tiny_model_dir), "--run", str(first_stage), "--corpus",
                str(dl19 / "collection.tsv"), "--queries", str(dl19 / "queries.dl19.tsv"), "--depth", "100", "--output", str(out)]

    reference = tmp_path / "reference.trec"
    subprocess.run(command(reference), check=True, capture_output=True)
    out = tmp_path / "killed.trec"
    record = out.with_name(out.name + ".progress")
    proc = subprocess.Popen(command(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (record.exists() and record.read_text().count("\n") >= 2):  # the settings line and a chunk's queries
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.005)
    time.sleep(random.Random(0).uniform(0, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if out.exists():
        pytest.skip("the run finished before the kill landed")
    done = record.read_text().count("\n") - 1
    assert 0 < done < 43
    resumed = subprocess.run(command(out), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{done} done before resume" in resumed.stdout
    assert out.read_bytes() == reference.read_bytes()

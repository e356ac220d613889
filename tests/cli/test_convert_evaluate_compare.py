"""End-to-end tests of `crossrank convert|evaluate|compare` on the real TREC DL19 files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import crossrank.cli.main as cli_main

REPO = Path(__file__).resolve().parents[2]
MY_COMMANDS = ("convert", "evaluate", "compare")


@pytest.fixture(scope="module")
def dl19() -> Path:
    root = Path(os.environ.get("CROSSRANK_DATA", REPO / ".." / "shared" / "data")) / "trec-dl19"
    if not (root / "qrels.dl19-passage.txt").is_file():
        pytest.skip(f"TREC DL19 data not found at {root} (set CROSSRANK_DATA)")
    return root


@pytest.fixture
def crossrank(monkeypatch, capsys):
    """Call the real `crossrank.cli.main.main`, registering only these three subcommands (so the
    test neither depends on nor imports the other commands, e.g. torch-based ones)."""
    monkeypatch.setattr(cli_main, "COMMANDS", {name: cli_main.COMMANDS.get(name, name) for name in MY_COMMANDS})

    def call(*argv: str) -> tuple[int, str, str]:
        rc = cli_main.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return rc, out, err

    return call


def test_main_registers_the_commands():
    for name in MY_COMMANDS:
        assert cli_main.COMMANDS[name] == name


def test_evaluate_prints_table_and_writes_json(crossrank, dl19, tmp_path):
    out_json = tmp_path / "metrics.json"
    rc, out, _ = crossrank("evaluate", "--qrels", dl19 / "qrels.dl19-passage.txt",
                           "--run", dl19 / "runs" / "run.dl19.bm25.top100.trec",
                           "--metrics", "MRR@10,nDCG@10,AP", "--relevance-level", "2", "--json", out_json)
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split() == ["metric", "value"]
    assert lines[2].split() == ["nDCG@10", "0.5058"]
    assert [line.index(line.split()[1]) + len(line.split()[1]) for line in lines] == [len(lines[0])] * 4  # aligned
    values = json.loads(out_json.read_text())
    assert list(values) == ["MRR@10", "nDCG@10", "AP"]
    assert values["nDCG@10"] == pytest.approx(0.5058, abs=1e-4)


def test_evaluate_per_query(crossrank, dl19):
    rc, out, _ = crossrank("evaluate", "--qrels", dl19 / "qrels.dl19-passage.txt",
                           "--run", dl19 / "runs" / "run.dl19.splade-pp-ed.top100.trec",
                           "--metrics", "nDCG@10", "--per-query")
    assert rc == 0
    per_query, summary = out.split("\n\n")
    assert len(per_query.splitlines()) == 1 + 43
    assert per_query.splitlines()[0].split() == ["query", "nDCG@10"]
    assert summary.splitlines()[1].split() == ["nDCG@10", "0.7308"]


def test_convert_round_trip_then_evaluate(crossrank, dl19, tmp_path):
    msmarco, trec = tmp_path / "bm25.tsv.gz", tmp_path / "bm25.trec"
    assert crossrank("convert", "--input", dl19 / "runs" / "run.dl19.bm25.top100.trec",
                     "--output", msmarco, "--to", "msmarco")[0] == 0
    assert crossrank("convert", "--input", msmarco, "--output", trec, "--to", "trec", "--tag", "back")[0] == 0
    assert trec.read_text().splitlines()[0] == "264014 Q0 5611210 1 -1.0 back"
    rc, out, _ = crossrank("evaluate", "--qrels", dl19 / "qrels.dl19-passage.txt", "--run", trec,
                           "--metrics", "nDCG@10")
    assert rc == 0 and out.splitlines()[1].split() == ["nDCG@10", "0.5058"]


def test_compare_bm25_vs_splade(crossrank, dl19):
    rc, out, _ = crossrank("compare", "--qrels", dl19 / "qrels.dl19-passage.txt",
                           dl19 / "runs" / "run.dl19.bm25.top100.trec", dl19 / "runs" / "run.dl19.splade-pp-ed.top100.trec",
                           "--metrics", "nDCG@10,RR@10", "--relevance-level", "2", "--permutations", "2000")
    assert rc == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert out.splitlines()[2].split() == ["metric", "queries", "A", "B", "B-A", "t-test", "p", "rand.", "p"]
    assert rows["nDCG@10"][1:5] == ["43", "0.5058", "0.7308", "+0.2250"]
    assert float(rows["nDCG@10"][5]) < 1e-4 and float(rows["nDCG@10"][6]) < 0.01


def test_malformed_run_names_file_and_line_and_leaves_no_output(crossrank, dl19, tmp_path):
    bad = tmp_path / "bad.trec"
    lines = (dl19 / "runs" / "run.dl19.bm25.top100.trec").read_text().splitlines()[:20]
    lines[16] = "264014 Q0 123 17"
    bad.write_text("\n".join(lines) + "\n")
    output = tmp_path / "out.tsv"
    rc, _, err = crossrank("convert", "--input", bad, "--output", output, "--to", "msmarco")
    assert rc == 2
    assert f"{bad}:17: expected 6 whitespace-separated fields (qid Q0 docid rank score tag), got 4" in err
    assert not output.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.trec"]

    json_out = tmp_path / "m.json"
    rc, _, err = crossrank("evaluate", "--qrels", dl19 / "qrels.dl19-passage.txt", "--run", bad, "--json", json_out)
    assert rc == 2 and f"{bad}:17:" in err and not json_out.exists()


def test_unknown_metric_is_a_clear_error(crossrank, dl19):
    rc, _, err = crossrank("evaluate", "--qrels", dl19 / "qrels.dl19-passage.txt",
                           "--run", dl19 / "runs" / "run.dl19.bm25.top100.trec", "--metrics", "nDCG@10,FOO@3")
    assert rc == 2 and "unknown metric 'FOO@3'" in err


def test_console_script_subprocess(dl19):
    script = Path(sys.executable).parent / "crossrank"
    if not script.is_file():
        pytest.skip("crossrank console script not installed in this environment")
    result = subprocess.run([str(script), "evaluate", "--qrels", str(dl19 / "qrels.dl19-passage.txt"),
                             "--run", str(dl19 / "runs" / "run.dl19.bm25.top100.trec"), "--metrics", "nDCG@10"],
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0 and "No module named 'crossrank.cli." in result.stderr:
        pytest.skip(f"another subcommand module is not in place yet: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].split() == ["nDCG@10", "0.5058"]


def test_evaluate_files_is_the_library_call(dl19, tmp_path):
    from crossrank.evaluation.evaluate_job import EvaluateConfig, evaluate_files

    out_json = tmp_path / "metrics.json"
    result = evaluate_files(EvaluateConfig(dl19 / "qrels.dl19-passage.txt", dl19 / "runs" / "run.dl19.splade-pp-ed.top100.trec",
                                           ["nDCG@10", "RR@10"], relevance_level=2, per_query=True, json=out_json))
    assert list(result.means) == ["nDCG@10", "RR@10"] and result.means["nDCG@10"] == pytest.approx(0.7308, abs=1e-4)
    assert len(result.per_query) == 43 and json.loads(out_json.read_text()) == pytest.approx(result.means)
    mean = sum(v["nDCG@10"] for v in result.per_query.values()) / len(result.per_query)
    assert mean == pytest.approx(result.means["nDCG@10"])
    assert evaluate_files(EvaluateConfig(dl19 / "qrels.dl19-passage.txt", dl19 / "runs" / "run.dl19.bm25.top100.trec")).per_query is None

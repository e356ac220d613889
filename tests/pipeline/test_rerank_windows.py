"""`crossrank rerank --long-passages window` on SciFact abstracts: scores equal predict with the same windows."""
from __future__ import annotations

import numpy as np
import pytest

from crossrank import CrossEncoder, WindowConfig
from crossrank.cli.main import main
from crossrank.data import load_qrels, load_run
from crossrank.pipeline import RerankConfig, from_run, rerank_run


@pytest.fixture(scope="module")
def scifact_run(data_dir, tmp_path_factory):
    """3 SciFact test claims x 6 abstracts (their evidence and 5 others, most longer than 64 tokens)."""
    folder = data_dir / "scifact"
    qrels = load_qrels(folder / "qrels" / "test.tsv")
    qids = sorted(qrels, key=int)[:3]
    fillers = ["4983", "5836", "7912", "18670", "19238"]
    lines = []
    for qid in qids:
        docs = [*qrels[qid], *fillers][:6]
        lines += [f"{qid} Q0 {d} {rank + 1} {10.0 - rank} bm25" for rank, d in enumerate(docs)]
    path = tmp_path_factory.mktemp("scifact") / "run.trec"
    path.write_text("\n".join(lines) + "\n")
    return folder, path


def rerank_args(folder, run, out, *extra):
    return ["rerank", "--run", str(run), "--corpus", str(folder / "corpus.jsonl"), "--queries", str(folder / "queries.jsonl"),
            "--max-length", "64", "--output", str(out), *extra]


def test_cli_rerank_with_windows_scores_like_predict(scifact_run, tiny_model_dir, tmp_path, capsys):
    folder, run = scifact_run
    windowed, truncated = tmp_path / "window.trec", tmp_path / "truncate.trec"
    assert main(["rerank", "--model", str(tiny_model_dir), *rerank_args(folder, run, windowed)[1:],
                 "--long-passages", "window", "--window-stride", "16", "--aggregate", "mean", "--window-keep", "2"]) == 0
    assert main(["rerank", "--model", str(tiny_model_dir), *rerank_args(folder, run, truncated)[1:]]) == 0
    assert "reranked 3 queries (18 pairs" in capsys.readouterr().out
    model = CrossEncoder(tiny_model_dir, max_length=64)
    got_w, got_t = load_run(windowed), load_run(truncated)
    long_docs = 0
    for c in from_run(run, folder / "corpus.jsonl", folder / "queries.jsonl", 100):
        pairs = [(c.query, t) for t in c.texts]
        expected = model.predict(pairs, long_passages="window", window=WindowConfig(stride=16, aggregate="mean", keep=2))
        np.testing.assert_allclose([got_w[c.query_id][d] for d in c.doc_ids], expected, atol=1e-5)
        np.testing.assert_allclose([got_t[c.query_id][d] for d in c.doc_ids], model.predict(pairs), atol=1e-5)
        fits = model.tokenize([c.query] * len(c.texts), c.texts).truncated == 0
        long_docs += sum(len(model.tokenize([c.query], [t]).input_ids[0]) == 64 for t in c.texts)
        if fits:
            np.testing.assert_allclose(expected, model.predict(pairs), atol=1e-5)
    assert long_docs >= 9  # the comparison covers passages that were split


def test_rerank_run_passes_window_settings(scifact_run, tiny_model_dir, tmp_path):
    folder, run = scifact_run
    model = CrossEncoder(tiny_model_dir, max_length=64)
    cands = list(from_run(run, folder / "corpus.jsonl", folder / "queries.jsonl", 100))
    config = RerankConfig(chunk_pairs=5, long_passages="window", window=WindowConfig(size=40, stride=40, aggregate="first"))
    rerank_run(model, cands, tmp_path / "out.trec", config)
    got = load_run(tmp_path / "out.trec")
    for c in cands:
        expected = model.predict([(c.query, t) for t in c.texts], long_passages="window", window=WindowConfig(size=40, stride=40, aggregate="first"))
        np.testing.assert_allclose([got[c.query_id][d] for d in c.doc_ids], expected, atol=1e-5)
    with pytest.raises(ValueError, match="pass long_passages='window'"):
        RerankConfig(window=WindowConfig())


@pytest.mark.parametrize(("flags", "message"), [
    (["--window-size", "8"], "--window-size apply to windows only: add --long-passages window"),
    (["--aggregate", "mean", "--window-stride", "3"], "--window-stride, --aggregate apply to windows only"),
    (["--long-passages", "window", "--window-size", "8", "--window-stride", "9"], "window stride expects 1 <= stride <= size"),
    (["--long-passages", "window", "--window-size", "0"], "argument --window-size: expected an integer >= 1, got 0"),
    (["--window-keep", "2"], "--window-keep apply to windows only: add --long-passages window"),
    (["--long-passages", "window", "--window-keep", "0"], "argument --window-keep: expected an integer >= 1, got 0"),
])
def test_cli_refuses_bad_window_flags_before_loading(scifact_run, tmp_path, capsys, flags, message):
    folder, run = scifact_run
    assert main(["rerank", "--model", str(tmp_path / "no-model"), *rerank_args(folder, run, tmp_path / "o.trec")[1:], *flags]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("crossrank rerank: error: ") and message in err  # one line (after argparse's usage)

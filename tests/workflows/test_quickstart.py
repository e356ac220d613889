"""The quickstart end to end on real data, with a tiny model and few candidates so it runs in the suite."""
from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from crossrank import CrossEncoder
from crossrank.cli.main import main
from crossrank.model.fusion import FusedReranker
from crossrank.workflows.quickstart import QuickstartConfig, run_quickstart

pytestmark = pytest.mark.slow


def test_quickstart_writes_model_runs_report_and_plot(data_dir, tiny_model_dir, tmp_path):
    cfg = QuickstartConfig(data=data_dir, output=tmp_path / "qs", base_model=str(tiny_model_dir), teacher=str(tiny_model_dir), max_steps=4,
                           pseudo_queries=12, scifact_pseudo_queries=6, freeze_layers=1, eval_steps=2, max_length=64, dl19_depth=10, scifact_depth=5, precision="fp32",
                           beir_folders=("classic/cisi", "classic/cranfield"), beir_queries=4, beir_depth=5)
    summary = run_quickstart(cfg)
    out = tmp_path / "qs"
    for name in ("report.md", "report.png", "metrics.json", "trec-dl19.BM25.trec", "trec-dl19.bi-encoder.trec", "scifact.crossrank_cross-encoder.trec",
                 "training_examples.jsonl"):
        assert (out / name).exists(), name
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(summary))
    # BM25 rows are the first stage itself: DL19 BM25 top-10 as published (0.5058 at depth 100; same top-10 here)
    assert metrics["metrics"]["TREC DL19"]["BM25"]["nDCG@10"] == pytest.approx(0.5058, abs=1e-4)
    assert metrics["metrics"]["SciFact"]["BM25"]["nDCG@10"] > 0.6
    # the small BEIR-layout collections, each with its own rows, and their NanoBEIR-style mean per system
    rows = metrics["metrics"]
    mean = rows["mean of 2 BEIR-layout sets"]
    for system in ("BM25", "bi-encoder", "crossrank cross-encoder", "crossrank fused"):
        assert mean[system]["nDCG@10"] == pytest.approx((rows["cisi"][system]["nDCG@10"] + rows["cranfield"][system]["nDCG@10"]) / 2)
    assert (out / "cranfield.crossrank_fused.trec").exists() and set(metrics["paired_tests_nDCG@10"]["cisi"]) == set(mean)
    report = (out / "report.md").read_text()
    assert "| mean of 2 BEIR-layout sets | BM25 |" in report
    assert "| TREC DL19 | BM25 |" in report and "pairs/s" in report
    assert "| TREC DL19 | crossrank cross-encoder | " in report.split("Paired tests")[1]  # tested against BM25 and the bi-encoder
    assert set(metrics["paired_tests_nDCG@10"]["SciFact"]["crossrank cross-encoder"]) == {"BM25", "bi-encoder"}
    # the bi-encoder row is the cosine of all-MiniLM-L6-v2 (DL19 BM25 top-10 reordered)
    assert metrics["metrics"]["TREC DL19"]["bi-encoder"]["nDCG@10"] > metrics["metrics"]["TREC DL19"]["BM25"]["nDCG@10"]
    assert metrics["teacher"]["pseudo_lists"] == 12 + 6 and metrics["teacher"]["judged_lists"] == 454
    ids = [json.loads(line)["query_id"] for line in (out / "training_examples.jsonl").read_text().split("\n") if line]  # not splitlines: texts hold U+2028
    assert sum(i.startswith("scifact/pq-") for i in ids) == 6 and sum(i.startswith("msmarco-dev600/pq-") for i in ids) == 12
    assert "scifact: 6 pseudo-queries" in metrics["teacher"]["pseudo_skipped"]
    fusion = metrics["fusion"]
    scoring = metrics["scoring_precision"]["cross_encoder"]  # bf16 only where faster and faithful on the tune split
    assert scoring["precision"] == "fp32" or (abs(scoring["ndcg_diff"]) <= 0.005 and scoring["overlap"] >= 0.95), scoring
    assert fusion["value"] >= max(fusion["inputs"].values())  # the guard: never below its best input on the tune split
    # every distinct text the bi-encoder embedded is kept: a restart embeds nothing twice
    from crossrank.model.dense import DenseEncoder
    from crossrank.model.vector_cache import VectorCache

    kept = VectorCache(out / "dense_vectors.npz")
    bi_encoder = metrics["scoring_precision"]["bi_encoder"]
    assert bi_encoder["precision"] in ("fp32", "bf16") and "measured" in bi_encoder["reason"]
    kept.bind(DenseEncoder(precision=bi_encoder["precision"], bf16_weights=bi_encoder["bf16_weights"],
                           backend=bi_encoder["backend"]).identity())
    assert len(kept) > 1000 and kept.missing(["a text no run embedded"]) == [0]
    model = CrossEncoder(out / "model")
    assert model.predict([("q", "p")]).shape == (1,)
    # SciFact's long abstracts: the cross-encoder scored 3 windows of 72 tokens per passage (the first and the two sharing
    # most query tokens), the max of them, at the training length
    assert metrics["long_passages"]["windows"] == {"size": 72, "stride": 72, "keep": 3, "aggregate": "max"}
    check_scifact_windows(data_dir, out, scoring["backend"], scoring["precision"])
    fused = FusedReranker.load(out / "model")
    assert fused.choice.reason == metrics["fusion"]["reason"] and asdict(fused.weights) == metrics["fusion"]["weights"]


def check_scifact_windows(data_dir, out, backend, precision):
    import numpy as np

    from crossrank import WindowConfig
    from crossrank.data import Collection, iter_corpus, iter_queries, load_run

    run = load_run(out / "scifact.crossrank_cross-encoder.trec")
    queries = {q.query_id: q.text for q in iter_queries(data_dir / "scifact" / "queries.jsonl")}
    texts = Collection.from_passages(iter_corpus(data_dir / "scifact" / "corpus.jsonl"))
    model = CrossEncoder(out / "model", max_length=96)
    model.set_backend(backend, precision)
    window = WindowConfig(size=72, stride=72, keep=3)
    split = 0
    for qid in sorted(run)[:3]:
        docs = sorted(run[qid])
        pairs = [(queries[qid], texts[d]) for d in docs]
        expected = model.predict(pairs, long_passages="window", window=window)
        np.testing.assert_allclose([run[qid][d] for d in docs], expected, atol=2e-2 if precision == "bf16" else 1e-4)
        split += int((model.tokenize([q for q, _ in pairs], [p for _, p in pairs]).truncated))
    assert split >= 5  # the comparison covers passages cut into windows


def test_missing_data_names_what_and_how(tmp_path, capsys):
    code = main(["quickstart", "--data", str(tmp_path), "--output", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "msmarco-dev600/queries.tsv" in err and "crossrank download" in err and "--data" in err
    assert not (tmp_path / "out").exists()

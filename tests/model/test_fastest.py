"""precision="fastest": the fastest lossy path that passed the fidelity check for these weights on
this host, else exact; `crossrank export --precision all --check` records every path it can run;
`crossrank rerank --precision fastest` scores with it."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from crossrank import CrossEncoder
from crossrank.cli.main import main
from crossrank.model.backends import selection
from crossrank.model.backends.bf16_weights import Bf16Variant
from crossrank.model.backends.fidelity_records import passing_records, record_fidelity
from crossrank.workflows.export import ExportConfig, export_model
from crossrank.workflows.fidelity import FidelityConfig


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSRANK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(selection, "model_bf16_speedup", lambda ce, refresh=False: 2.0)  # bf16 runs as bf16 here




def record(ce, backend, precision, ratio, passed=True):
    record_fidelity(ce, {"backend": backend, "precision": precision, "passed": passed, "variant": "",
                         "fp32_pairs_per_second": 100.0, "pairs_per_second": 100.0 * ratio})


def test_without_a_passing_record_fastest_is_exact_and_says_why(tiny_copy, caplog):
    with caplog.at_level(logging.INFO):
        ce = CrossEncoder(tiny_copy, precision="fastest")
    assert (ce.backend, ce.precision) == ("torch", "fp32") and not ce.inference_backend.lossy
    assert "no lossy path has passed" in ce.inference_backend.reason and "--precision all --check" in caplog.text


def test_fastest_picks_the_quickest_passing_path_that_runs_here(tiny_copy, monkeypatch):
    ce = CrossEncoder(tiny_copy)
    monkeypatch.setattr(selection, "choose_bf16_variant", lambda model, refresh=False: Bf16Variant(False, "autocast", 1.0))
    record(ce, "torch", "int8", 1.5)
    record(ce, "torch", "bf16", 2.0)
    record(ce, "onnx", "int8", 9.0, passed=False)  # failed: never chosen
    record(ce, "openvino", "bf16", 3.0)
    assert len(passing_records(ce)) == 3
    monkeypatch.setattr(selection, "openvino_available", lambda: False)  # recorded, but it cannot run here
    fast = CrossEncoder(tiny_copy, precision="fastest")
    assert (fast.backend, fast.precision) == ("torch", "bf16") and "2.00x fp32 in its fidelity check" in fast.inference_backend.reason
    only_int8 = CrossEncoder(tiny_copy, backend="torch", precision="fastest")
    assert only_int8.precision == "bf16"  # --backend narrows the choice to its records
    # a record holds for the weights it was made with only
    with torch.no_grad():
        ce.model.classifier.bias.add_(1.0)
    ce.save(tiny_copy)
    assert CrossEncoder(tiny_copy, precision="fastest").precision == "fp32"


def test_export_all_checks_every_path_and_fastest_follows_it(tiny_copy, data_dir, monkeypatch):
    monkeypatch.setattr(selection, "choose_bf16_variant", lambda model, refresh=False: Bf16Variant(False, "autocast", 1.0))
    loose = FidelityConfig(data_dir / "trec-dl19", queries=2, max_ndcg_diff=1.0, min_overlap=0.0)
    with pytest.raises(ValueError, match="needs --check"):
        export_model(ExportConfig(tiny_copy, "all"))
    result = export_model(ExportConfig(tiny_copy, "all", check=loose))
    checked = {(r.backend, r.precision) for r in result.reports}
    assert {("torch", "bf16"), ("torch", "int8")} <= checked and all(r.passed for r in result.reports)
    assert len(result.reports) + len(result.skipped) == 4
    best = max(result.reports, key=lambda r: r.pairs_per_second / r.fp32_pairs_per_second)
    fast = CrossEncoder(tiny_copy, precision="fastest")
    if best.pairs_per_second > best.fp32_pairs_per_second:
        assert (fast.backend, fast.precision) == (best.backend, best.precision)
    else:
        assert fast.precision == "fp32"


def scores_of(path):
    return {(f[0], f[2]): float(f[4]) for f in (line.split() for line in path.read_text().splitlines())}


def test_rerank_cli_takes_backend_and_precision(tiny_copy, data_dir, tmp_path):
    dl19 = data_dir / "trec-dl19"
    lines = (dl19 / "runs" / "run.dl19.bm25.top100.trec").read_text().splitlines()
    first = sorted({line.split()[0] for line in lines})[:2]
    run = tmp_path / "run.trec"
    run.write_text("\n".join(line for line in lines if line.split()[0] in first) + "\n")
    common = ["--run", str(run), "--corpus", str(dl19 / "collection.tsv"), "--queries", str(dl19 / "queries.dl19.tsv"), "--depth", "5"]
    exact, fastest = tmp_path / "exact.trec", tmp_path / "fastest.trec"
    assert main(["rerank", "--model", str(tiny_copy), *common, "--output", str(exact)]) == 0
    assert main(["rerank", "--model", str(tiny_copy), *common, "--precision", "fastest", "--output", str(fastest)]) == 0
    assert exact.read_text() == fastest.read_text()  # no passing record: exact
    int8 = tmp_path / "int8.trec"
    assert main(["rerank", "--model", str(tiny_copy), *common, "--backend", "torch", "--precision", "int8", "--output", str(int8)]) == 0
    scores, reference = scores_of(int8), scores_of(exact)
    assert len(scores) == 10 and scores.keys() == reference.keys()
    assert not np.allclose([scores[k] for k in reference], list(reference.values()), atol=1e-7)

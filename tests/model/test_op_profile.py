"""benchmarks/op_profile.py on real DL19 pairs: OpenVINO's per-node counters summed by node type."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from op_profile import openvino_op_profile, profile_lines  # noqa: E402

pytestmark = pytest.mark.usefixtures("private_cache")


def test_the_profile_covers_the_time_and_names_the_matrix_products(tiny_copy, data_dir):
    pytest.importorskip("openvino")
    from crossrank.data.candidates import from_run

    dl19 = data_dir / "trec-dl19"
    cands = list(from_run(dl19 / "runs" / "run.dl19.bm25.top100.trec", dl19 / "collection.tsv", dl19 / "queries.dl19.tsv", 40))
    pairs = [(c.query, t) for c in cands[:1] for t in c.texts]
    speed, shares = openvino_op_profile(tiny_copy, pairs, "fp32", max_length=64)
    assert speed > 0 and abs(sum(s for _, s in shares) - 1.0) < 1e-6
    assert [s for _, s in shares] == sorted((s for _, s in shares), reverse=True)
    assert any(op.startswith("FullyConnected") for op, _ in shares)  # the Linear layers, as OpenVINO names them
    lines = profile_lines(tiny_copy, pairs, max_length=64)
    assert lines[0].startswith("op profile, openvino fp32") and "FullyConnected" in " ".join(lines)

"""The quickstart's training data on real files: judged lists and pseudo-queries, each corpus labelled
by its teacher (the one chosen on dev600, or `other_teacher` for the other corpora)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from crossrank.model.fusion import znorm
from crossrank.training.corpus_examples import PseudoDataConfig, pseudo_lists
from crossrank.training.teachers import TeacherConfig
from crossrank.workflows.quickstart import dev600_sources
from crossrank.workflows.training_data import build_training_data

pytestmark = pytest.mark.slow


def read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]  # texts may hold U+2028


def test_other_corpora_are_labelled_by_their_own_teacher(data_dir, tiny_model_dir, tmp_path):
    from crossrank.training.distillation import load_teacher

    dense = load_teacher(str(tiny_model_dir), "bi-encoder")
    scifact = PseudoDataConfig(str(data_dir / "scifact" / "corpus.jsonl"), num_queries=4, num_candidates=5, seed=3)
    cosine = TeacherConfig(dense=1.0, first_stage=0.0, feedback_depth=0)
    data = build_training_data(dev600_sources(data_dir), tmp_path / "ex.jsonl", dense, pseudo_queries=5, num_negatives=5,
                               scale=2.5, other_corpora=[scifact], other_teacher=cosine)
    assert (data.judged, data.pseudo) == (454, 9) and data.teacher.endswith("; other corpora: 1 x bi-encoder")
    examples = {e["query_id"]: e for e in read(tmp_path / "ex.jsonl")}
    assert sum(q.startswith("msmarco-dev600/pq-") for q in examples) == 5
    lists, _ = pseudo_lists(scifact, show_progress=False)
    assert len(lists) == 4
    for c in lists:  # the bi-encoder's cosine alone, z-normalised within the list, at the scale of the rest
        got = examples[f"scifact/{c.query_id}"]
        assert got["doc_ids"] == c.doc_ids
        q, p = dense.encode([c.query], show_progress=False)[0], dense.encode(list(c.texts), show_progress=False)
        np.testing.assert_allclose(got["labels"], 2.5 * znorm(p @ q), atol=1e-4)
        assert not np.allclose(got["labels"], 2.5 * znorm(np.asarray(c.first_stage)), atol=1e-2)  # not BM25's


def test_without_other_teacher_every_pseudo_query_has_the_chosen_teacher(data_dir, tiny_model_dir, tmp_path):
    from crossrank.training.distillation import load_teacher

    dense = load_teacher(str(tiny_model_dir), "bi-encoder")
    scifact = PseudoDataConfig(str(data_dir / "scifact" / "corpus.jsonl"), num_queries=3, num_candidates=5, seed=3)
    data = build_training_data(dev600_sources(data_dir), tmp_path / "ex.jsonl", dense, pseudo_queries=0, num_negatives=5,
                               other_corpora=[scifact])
    assert (data.judged, data.pseudo) == (454, 3) and "other corpora" not in data.teacher
    ids = [e["query_id"] for e in read(tmp_path / "ex.jsonl")]
    assert sum(i.startswith("scifact/pq-") for i in ids) == 3

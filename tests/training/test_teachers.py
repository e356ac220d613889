"""Ensemble teachers: targets by their definition, weights chosen on judged queries, bad settings refused."""
from __future__ import annotations

import numpy as np
import pytest

from crossrank.data import load_qrels
from crossrank.evaluation import evaluate
from crossrank.model.fusion import FusionWeights, fuse, rocchio, znorm
from crossrank.data.candidates import Candidates
from crossrank.training.config import DataConfig
from crossrank.training.corpus_examples import labelled_lists
from crossrank.training.teachers import EnsembleTeacher, TeacherConfig, choose_teacher


class FixedVectors:
    """A stand-in bi-encoder: fixed unit vectors per text (counts its calls)."""

    def __init__(self, table):
        self.table, self.calls = table, 0

    def encode_lists(self, queries, lists, show_progress=None):
        self.calls += 1
        return [(self.table[q], np.stack([self.table[p] for p in ps])) for q, ps in zip(queries, lists)]


def unit(*values):
    v = np.asarray(values, dtype=np.float64)
    return v / np.linalg.norm(v)


def test_targets_are_scaled_znormalised_fusion_plus_labels():
    table = {"q": unit(1, 0, 0), "a": unit(1, 1, 0), "b": unit(0, 1, 0), "c": unit(1, 0, 1)}
    lists = [Candidates("1", "q", ["a", "b", "c"], ["a", "b", "c"], [3.0, 1.0, 2.0])]
    cfg = TeacherConfig(dense=2.0, first_stage=1.0, feedback_depth=1, scale=1.5, label_weight=0.5)
    teacher = EnsembleTeacher(cfg, dense=FixedVectors(table))
    targets = teacher.targets(lists, [[1.0, 0.0, 0.0]], show_progress=False)
    passages = np.stack([table[p] for p in "abc"])
    cos = passages @ table["q"]
    weights = FusionWeights(cross_encoder=0.0, dense=2.0, first_stage=1.0)
    first = fuse(weights, None, cos, np.array([3.0, 1.0, 2.0]))
    second = fuse(weights, None, rocchio(table["q"], passages, first, 1, 1.0), np.array([3.0, 1.0, 2.0]))
    expected = 1.5 * znorm(second) + 0.5 * np.array([1.0, 0.0, 0.0])
    assert targets[0] == pytest.approx(expected.tolist(), abs=1e-6)
    assert "2 x bi-encoder + 1 x BM25, feedback top 1" == cfg.describe()


@pytest.mark.parametrize("bad, message", [
    (dict(dense=0.0, first_stage=0.0), "at least one scorer"),
    (dict(dense=-1.0), "`dense` must be a finite number >= 0"),
    (dict(scale=0.0), "`scale` must be > 0"),
    (dict(cross_encoder=1.0), "needs `cross_encoder_model`"),
    (dict(feedback_depth=-2), "depth"),
])
def test_bad_teacher_settings_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        TeacherConfig(**bad)


def test_teacher_without_first_stage_scores_is_refused():
    teacher = EnsembleTeacher(TeacherConfig(dense=0.0, first_stage=1.0))
    with pytest.raises(ValueError, match="needs first-stage scores"):
        teacher.scores([Candidates("1", "q", ["a"], ["a"], [None])])


def test_teacher_chosen_on_real_judged_queries_beats_bm25_there(data_dir):
    from crossrank.model.dense import DenseEncoder

    d = data_dir / "msmarco-dev600"
    sources = dict(queries=str(d / "queries.tsv"), corpus=str(d / "collection.tsv"), qrels=str(d / "qrels.dev.small.600q.trec"),
                   run=str(d / "run.bm25.top20.trec"), split=str(d / "split.tsv"))
    lists, labels = labelled_lists(DataConfig(format="lists", num_negatives=7, depth=20, **sources))
    lists, labels = lists[:60], labels[:60]
    assert all(sum(lab) >= 1 for lab in labels) and all(c.first_stage[0] is not None for c in lists)
    dense = DenseEncoder()
    vectors = dense.encode_lists([c.query for c in lists], [c.texts for c in lists], show_progress=False)
    qrels = load_qrels(sources["qrels"])
    config, choice = choose_teacher(lists, qrels, vectors, base=TeacherConfig(scale=2.0, label_weight=0.0))
    assert choice.value >= max(choice.inputs.values())  # never below its best input on the queries it was chosen on
    teacher = EnsembleTeacher(config, dense=dense)
    scores = teacher.scores(lists, vectors=vectors)
    run = {c.query_id: dict(zip(c.doc_ids, map(float, s))) for c, s in zip(lists, scores)}
    bm25 = {c.query_id: dict(zip(c.doc_ids, c.first_stage)) for c in lists}
    judged = {q: qrels[q] for q in run}
    assert evaluate(judged, run, metrics=["RR@10"])["RR@10"] == pytest.approx(choice.value, abs=1e-9)
    assert choice.value > evaluate(judged, bm25, metrics=["RR@10"])["RR@10"] + 0.05
    for s in scores:  # z-normalised within each list
        assert abs(float(np.mean(s))) < 1e-5 and float(np.std(s)) == pytest.approx(1.0, abs=1e-4)

"""Distillation targets: a cross-encoder or a bi-encoder teacher, scaled, plus the labels; cached."""
from __future__ import annotations

import numpy as np
import pytest

from crossrank.training.config import DataConfig, TrainConfig
from crossrank.training.datasets import build_examples
from crossrank.training.distillation import (
    apply_teacher_scores,
    load_score_cache,
    load_teacher,
    pair_key,
    save_score_cache,
    teacher_scores,
)


@pytest.fixture(scope="module")
def examples(dev600_data):
    return build_examples(DataConfig(format="lists", num_negatives=3, depth=20, **dev600_data), seed=3)[:6]


@pytest.fixture(scope="module")
def bi_encoder(minilm_dir):
    from crossrank.model.dense import DenseEncoder

    return DenseEncoder(minilm_dir, device="cpu")


def test_bi_encoder_scores_pairs_by_cosine(bi_encoder, examples):
    pairs = [(e.query, p) for e in examples for p in e.passages]
    pairs += pairs[:3]  # repeated pairs are embedded once and score the same
    scores = bi_encoder.score_pairs(pairs)
    expected = np.array([bi_encoder.encode([q])[0] @ bi_encoder.encode([p])[0] for q, p in pairs])
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert scores.dtype == np.float32 and scores.std() > 0.05  # real, varied similarities


def test_bi_encoder_teacher_targets_are_scaled_cosines_plus_labels(bi_encoder, examples, tmp_path):
    cache = tmp_path / "teacher.tsv"
    out = apply_teacher_scores(examples, bi_encoder, cache, kind="bi-encoder", scale=20.0, label_weight=3.0)
    for before, after in zip(examples, out):
        cosines = bi_encoder.score_pairs([(before.query, p) for p in before.passages])
        np.testing.assert_allclose(after.targets, 20.0 * cosines + 3.0 * np.asarray(before.targets), atol=1e-4)
        assert after.passages == before.passages and after.query_id == before.query_id
    # the positive (label 1) of each list is its best target here: the label weight keeps it on top
    assert all(np.argmax(a.targets) == np.argmax(b.targets) for a, b in zip(out, examples))

    class NoTeacher:
        def score_pairs(self, pairs):
            raise AssertionError("every pair is cached: the teacher must not run")

    again = apply_teacher_scores(examples, NoTeacher(), cache, kind="bi-encoder", scale=20.0, label_weight=3.0)
    assert [a.targets for a in again] == [a.targets for a in out]


def test_teacher_from_a_path_by_kind(minilm_dir, examples):
    from crossrank import CrossEncoder
    from crossrank.model.dense import DenseEncoder

    assert isinstance(load_teacher(str(minilm_dir), "bi-encoder"), DenseEncoder)
    assert isinstance(load_teacher("minilm", "bi-encoder"), DenseEncoder)
    assert isinstance(load_teacher(str(minilm_dir)), CrossEncoder)
    pairs = [(examples[0].query, p) for p in examples[0].passages]
    np.testing.assert_allclose(teacher_scores(pairs, str(minilm_dir), kind="bi-encoder"),
                               DenseEncoder(minilm_dir).score_pairs(pairs), atol=1e-6)


def test_teacher_settings_are_checked(examples):
    with pytest.raises(ValueError, match="teacher kind must be one of cross-encoder, bi-encoder, but got 'dense'"):
        load_teacher("minilm", "dense")
    with pytest.raises(ValueError, match="teacher_scale must be a positive number, but got 0"):
        apply_teacher_scores(examples, object(), scale=0)
    with pytest.raises(ValueError, match="`data.teacher_kind` must be cross-encoder or bi-encoder"):
        TrainConfig.from_dict({"model": "m", "data": {"teacher": "minilm", "teacher_kind": "dense"}})


def test_bi_encoder_in_bf16_keeps_the_cosines_and_their_order(minilm_dir, bi_encoder, examples):
    from crossrank.model.dense import DenseEncoder

    fast = DenseEncoder(minilm_dir, device="cpu", precision="bf16")
    for e in examples:
        pairs = [(e.query, p) for p in e.passages]
        exact, approx = bi_encoder.score_pairs(pairs), fast.score_pairs(pairs)
        assert approx.dtype == np.float32
        np.testing.assert_allclose(approx, exact, atol=0.02)
        assert np.argmax(approx) == np.argmax(exact)
    with pytest.raises(ValueError, match="DenseEncoder expects precision 'fp32', 'bf16' or 'auto', but got 'int8'"):
        DenseEncoder(minilm_dir, precision="int8")


def test_score_cache_round_trip_plain_and_gzip(tmp_path):
    cache = {pair_key("q", "p1"): 0.5, pair_key("q", "p2"): -1.25}
    for name in ("teacher.tsv", "teacher.tsv.gz"):
        path = tmp_path / "sub" / name
        save_score_cache(path, cache)
        assert load_score_cache(path) == cache
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["teacher.tsv", "teacher.tsv.gz"]  # no temporary files


def test_minilm_alias_is_resolved_in_one_place(minilm_dir):
    from crossrank.model.loading import resolve_model_name
    from crossrank.training.trainer import resolve_base_model

    assert resolve_model_name("minilm") == resolve_base_model("minilm") == str(minilm_dir)
    assert resolve_model_name("org/model") == resolve_base_model("org/model") == "org/model"
    assert resolve_model_name(minilm_dir) == minilm_dir  # a path passes through as it is

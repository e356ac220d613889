"""Collapse and divergence detection: chance levels by hand, the symptom rules, and real broken / healthy runs."""
from __future__ import annotations

import math

import pytest
import torch

from crossrank.losses import get_loss
from crossrank.training.monitor import MonitorConfig, TrainingMonitor, chance_loss, within_list_spread


def _batch(labels):
    return {"queries": [f"q{i}" for i in range(len(labels))],
            "passages": [[f"p{i}{j}" for j in range(len(row))] for i, row in enumerate(labels)], "labels": labels}


def test_chance_levels_are_those_of_a_constant_scorer():
    one_of_four = _batch([[1, 0, 0, 0], [0, 0, 1, 0]])
    assert chance_loss(get_loss("listnet"), one_of_four) == pytest.approx(math.log(4), rel=1e-5)
    assert chance_loss(get_loss("grouped_ce"), _batch([[1] + [0] * 7])) == pytest.approx(math.log(8), rel=1e-5)
    assert chance_loss(get_loss("bce"), _batch([[1], [0]])) == pytest.approx(math.log(2), rel=1e-5)
    p = 0.25  # unbalanced BCE: the best constant predicts the base rate; its loss is the label entropy
    entropy = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert chance_loss(get_loss("bce"), _batch([[1], [0], [0], [0]])) == pytest.approx(entropy, rel=1e-4)
    teacher = _batch([[2.0], [4.0]])  # MSE: the best constant is the mean target; its loss the variance
    assert chance_loss(get_loss("mse"), teacher) == pytest.approx(1.0, rel=1e-5)


def test_chance_level_leaves_the_global_rng_alone():
    torch.manual_seed(3)
    expected = torch.rand(1)
    torch.manual_seed(3)
    chance_loss(get_loss("mnrl", num_negatives=1), _batch([[1, 0], [1, 0], [1, 0]]))
    assert torch.equal(torch.rand(1), expected)


def test_within_list_spread():
    scores = torch.tensor([1.0, 3.0, 5.0, 5.0, 7.0])
    assert within_list_spread(scores, [2, 2, 1]) == pytest.approx((math.sqrt(2) + 0.0) / 2)
    assert within_list_spread(scores[:2], [1, 1]) == pytest.approx(math.sqrt(2))  # single passages: across the batch


def _monitor(**over):
    return TrainingMonitor(MonitorConfig(**{"patience": 2, "min_step": 2, "grace_steps": 4, **over}), baseline={"nDCG@10": 0.5})


def _feed(monitor, step, loss, chance, spread, **logs):
    monitor.record_batch(loss, chance, spread)
    return monitor.on_log(step, {"loss": loss, **logs})


def test_constant_scores_are_reported_once_after_warm_up_and_patience():
    m = _monitor()
    _feed(m, 1, 1.0, 2.0, 0.5)
    _feed(m, 2, 1.0, 2.0, 0.0)
    assert not m.symptoms  # one window is not a pattern
    _feed(m, 3, 1.0, 2.0, 0.0)
    assert [(s.name, s.step) for s in m.symptoms] == [("constant scores", 3)]
    # it began at step 2; step 1 was the last log that found the scores spread out
    assert (m.symptoms[0].onset, m.symptoms[0].healthy) == (2, 1)
    _feed(m, 4, 1.0, 2.0, 0.0)
    assert len(m.symptoms) == 1 and "learning rate" in m.symptoms[0].causes
    relative = _monitor()
    for step in (1, 2, 3):
        _feed(relative, step, 1.0, 2.0, 1.0 if step == 1 else 0.01)  # 1% of the first spread
    assert [s.name for s in relative.symptoms] == ["constant scores"]


def test_chance_level_counts_only_after_the_grace_period():
    m = _monitor()
    for step in range(1, 6):
        _feed(m, step, 2.0, 2.0, 0.5)
    assert not m.symptoms  # warm-up (2) + grace (4): not before step 6
    _feed(m, 6, 2.0, 2.0, 0.5)
    _feed(m, 7, 1.99, 2.0, 0.5)
    assert [(s.name, s.step) for s in m.symptoms] == [("loss at chance level", 7)]
    learning = _monitor()
    for step in range(1, 12):
        _feed(learning, step, 1.5, 2.0, 0.5)
    assert not learning.symptoms


def test_divergence_is_reported_at_once_and_stops_when_asked():
    m = _monitor(stop_on_collapse=True)
    assert not _feed(m, 1, 1.0, 2.0, 0.5, grad_norm=3.0)
    assert _feed(m, 2, float("nan"), 2.0, 0.5)
    assert [s.name for s in m.symptoms] == ["non-finite loss"]
    g = _monitor()
    assert not _feed(g, 1, 1.0, 2.0, 0.5, grad_norm=float("inf"))  # reported, but no stop unless asked
    assert [s.name for s in g.symptoms] == ["non-finite gradient"]


def test_below_first_stage_counts_after_half_of_training():
    m = _monitor()
    m.on_evaluate(4, 100, {"eval_nDCG@10": 0.3})
    assert not m.symptoms
    m.on_evaluate(60, 100, {"eval_nDCG@10": 0.55})
    assert not m.symptoms
    m.on_evaluate(80, 100, {"eval_nDCG@10": 0.45})
    assert [(s.name, s.step) for s in m.symptoms] == [("below first stage", 80)]


# ---------------------------------------------------------------------------------- real runs
def _quick(dev600_data, minilm_dir, out, **over):
    from crossrank.training import TrainConfig

    settings = {
        "model": str(minilm_dir), "output_dir": str(out), "loss": "lambda", "batch_size": 2, "max_steps": 24,
        "logging_steps": 2, "save_steps": 4, "max_length": 64, "warmup_ratio": 0.1, "precision": "fp32",
        "data": {"format": "lists", "num_negatives": 7, **dev600_data},
        "eval": {**dev600_data, "split_name": "tune", "depth": 10, "steps": 1000},
    }
    settings.update(over)
    return TrainConfig.from_dict(settings)


@pytest.mark.slow
def test_a_broken_run_is_flagged_within_a_few_logs_and_stopped(dev600_data, minilm_dir, tmp_path):
    from crossrank.training.trainer import train

    config = _quick(dev600_data, minilm_dir, tmp_path / "broken", learning_rate=1e-2, stop_on_collapse=True, save_steps=2, save_total_limit=20, eval=None)
    result = train(config, verbose=False)
    names = {s.name: s for s in result.symptoms}
    # logs every 2 steps, warm-up 3 steps: the spread is gone from the first log after warm-up on; the
    # report needs 3 probes in a row (the probe is throttled to a share of the run's time)
    assert "constant scores" in names and 4 <= names["constant scores"].onset <= 8
    assert names["constant scores"].step <= 20
    assert result.global_step < 24  # --stop-on-collapse ended it
    report = (tmp_path / "broken" / "training_report.md").read_text()
    assert "**WARNING** training problem at step" in report and "constant scores" in report and "learning rate" in report
    # the saved model is the last checkpoint saved while the run was last seen healthy, not the collapsed weights
    assert names["constant scores"].healthy < names["constant scores"].onset
    from crossrank import CrossEncoder

    scores = CrossEncoder(result.model_dir).predict([("what is rba", "Reserve Bank of Australia"), ("what is rba", "a cat")])
    assert abs(scores[0] - scores[1]) > 1e-4


@pytest.mark.slow
def test_a_healthy_run_raises_no_warning(dev600_data, minilm_dir, tmp_path):
    from crossrank.training.trainer import train

    result = train(_quick(dev600_data, minilm_dir, tmp_path / "healthy", learning_rate=2e-5), verbose=False)
    assert result.global_step == 24 and result.symptoms == []
    windows = result.log_history
    assert sum("loss" in h for h in windows) >= 12
    assert "no symptom of collapse" in (tmp_path / "healthy" / "training_report.md").read_text()

"""Every numeric setting of the library's configs is range-checked up front, with one message shape:
"<config>: `<field>` expects <what>, but got <value>" (issue: no silent wrong answers)."""
from __future__ import annotations

import math

import pytest

from crossrank.data.ranges import Range, check_ranges
from crossrank.evaluation.evaluate_job import EvaluateConfig
from crossrank.training.config import TrainConfig
from crossrank.workflows.export import ExportConfig
from crossrank.workflows.fidelity import FidelityConfig
from crossrank.workflows.quickstart import QuickstartConfig, check_settings


def test_range_rules_by_hand():
    positive = Range(0, open_low=True)
    assert positive.accepts(1e-5) and not positive.accepts(0) and not positive.accepts(-1)
    assert not positive.accepts(True) and not positive.accepts("1e-4") and not positive.accepts(math.nan) and not positive.accepts(math.inf)
    steps = Range(1, integer=True, also=(-1,))
    assert steps.accepts(1) and steps.accepts(-1) and not steps.accepts(0) and not steps.accepts(2.5) and not steps.accepts(-1.0)
    assert Range(0, 1).accepts(0.5) and not Range(0, 1).accepts(1.01)
    assert Range(1, integer=True, optional=True).accepts(None) and not Range(1, integer=True).accepts(None)
    with pytest.raises(ValueError, match=r"^thing: `n` expects an integer >= 1 \(or -1\), but got 0$"):
        check_ranges("thing", {"n": 0}, {"n": steps})


def train(**values):
    return TrainConfig.from_dict({"model": "m", **values})


@pytest.mark.parametrize(("build", "message"), [
    (lambda: train(learning_rate=-1e-4), "train config: `learning_rate` expects a number > 0, but got -0.0001"),
    (lambda: train(learning_rate="fast"), "`learning_rate` expects a number > 0, but got 'fast'"),
    (lambda: train(head_learning_rate=0), "`head_learning_rate` expects a number > 0 (or None), but got 0"),
    (lambda: train(warmup_ratio=1.5), "`warmup_ratio` expects a number >= 0 and <= 1, but got 1.5"),
    (lambda: train(weight_decay=-0.1), "`weight_decay` expects a number >= 0"),
    (lambda: train(epochs=0), "`epochs` expects a number > 0"),
    (lambda: train(max_steps=0), r"`max_steps` expects an integer >= 1 \(or -1\), but got 0"),
    (lambda: train(batch_size=2.5), "`batch_size` expects an integer >= 1, but got 2.5"),
    (lambda: train(batch_size=0), "`batch_size` expects an integer >= 1, but got 0"),
    (lambda: train(save_total_limit=0), "`save_total_limit` expects an integer >= 1"),
    (lambda: train(data={"num_negatives": 0}), "train config: data: `num_negatives` expects an integer >= 1, but got 0"),
    (lambda: train(data={"group_size": 1}), "data: `group_size` expects an integer >= 2"),
    (lambda: train(data={"depth": -5}), "data: `depth` expects an integer >= 1, but got -5"),
    (lambda: train(data={"label_weight": -3.0}), "data: `label_weight` expects a number >= 0"),
    (lambda: train(eval={"run": "r", "steps": 0}), "train config: eval: `steps` expects an integer >= 1, but got 0"),
    (lambda: train(eval={"run": "r", "depth": 0}), "eval: `depth` expects an integer >= 1"),
    (lambda: FidelityConfig(data=".", depth=0), "fidelity check: `depth` expects an integer >= 1, but got 0"),
    (lambda: FidelityConfig(data=".", min_overlap=1.2), "fidelity check: `min_overlap` expects a number >= 0 and <= 1"),
    (lambda: FidelityConfig(data=".", max_ndcg_diff=-0.01), "`max_ndcg_diff` expects a number >= 0"),
    (lambda: FidelityConfig(data=".", queries=0), r"`queries` expects an integer >= 1 \(or None\), but got 0"),
    (lambda: EvaluateConfig(qrels=".", run=".", relevance_level=-1), "evaluate: `relevance_level` expects an integer >= 0, but got -1"),
    (lambda: ExportConfig(model=".", max_length=0), "export: `max_length` expects an integer >= 1 (or None), but got 0"),
    (lambda: check_settings(QuickstartConfig(data=".", max_steps=0)), r"quickstart: `max_steps` expects an integer >= 1 \(or -1\)"),
    (lambda: check_settings(QuickstartConfig(data=".", learning_rate=0.0)), "quickstart: `learning_rate` expects a number > 0"),
    (lambda: check_settings(QuickstartConfig(data=".", window_keep=-1)), "quickstart: `window_keep` expects an integer >= 0, but got -1"),
    (lambda: check_settings(QuickstartConfig(data=".", scifact_depth=0)), "quickstart: `scifact_depth` expects an integer >= 1"),
    (lambda: check_settings(QuickstartConfig(data=".", fusion_min_gain=-0.01)), "quickstart: `fusion_min_gain` expects a number >= 0"),
])
def test_out_of_range_settings_are_refused_naming_the_field(build, message):
    with pytest.raises(ValueError, match=message.replace("(or None)", r"\(or None\)") if "\\(" not in message else message):
        build()


def test_numbers_yaml_reads_as_text_are_numbers(tmp_path):
    import yaml

    assert yaml.safe_load("1e-4") == "1e-4"  # PyYAML (YAML 1.1): an exponent without a dot is text
    path = tmp_path / "recipe.yaml"
    path.write_text("model: m\nlearning_rate: 1e-4\nhead_learning_rate: 2e-3\ndata:\n  label_weight: 3e0\n")
    config = TrainConfig.from_yaml(path, overrides=[("warmup_ratio", yaml.safe_load("5e-2"))])
    assert (config.learning_rate, config.head_learning_rate, config.warmup_ratio, config.data.label_weight) == (1e-4, 2e-3, 0.05, 3.0)
    with pytest.raises(ValueError, match="`max_steps` expects an integer >= 1"):
        TrainConfig.from_yaml(path, overrides=[("max_steps", "1e3")])  # counts are never read from text


def test_the_defaults_are_in_range():
    train()
    train(data={}, eval={"run": "r"})
    FidelityConfig(data=".")
    EvaluateConfig(qrels=".", run=".")
    ExportConfig(model=".")
    check_settings(QuickstartConfig(data="."))

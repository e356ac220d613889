"""Every recipe in examples/recipes runs in quick mode (a few steps on real dev600 data)."""
from __future__ import annotations

from pathlib import Path

import pytest

from crossrank.cli.main import main
from crossrank.training import TrainConfig

RECIPES = sorted((Path(__file__).resolve().parents[2] / "examples" / "recipes").glob("*.yaml"))
EXPECTED = {"bce", "bce_preprocessed", "cmnrl", "listnet", "lambda", "lambda_hard_neg", "listmle",
            "plistmle", "ranknet", "distillation", "distill_bi_encoder", "grouped"}


def test_every_recipe_of_the_guide_is_there():
    assert {p.stem for p in RECIPES} == EXPECTED


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_quick_mode(recipe, data_dir, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSRANK_DATA", str(data_dir))
    config = TrainConfig.from_yaml(recipe)
    args = ["train", "--config", str(recipe), "--model", str(tiny_model_dir), "--output-dir", str(tmp_path / "out"),
            "--max-steps", "2", "--max-length", "64", "--set", "save_steps=2"]
    if config.eval is not None:
        args += ["--eval-steps", "2"]
    if config.data.teacher:
        args += ["--teacher", str(tiny_model_dir), "--set", f"data.teacher_cache={tmp_path / 'teacher.tsv'}"]
    assert main(args) == 0
    saved = tmp_path / "out" / "model"
    assert (saved / "model.safetensors").exists() and (saved / "config_sentence_transformers.json").exists()
    history = (tmp_path / "out" / "log_history.json").read_text()
    assert '"loss"' in history
    if config.eval is not None:
        assert f'"eval_{config.eval.metric_for_best}"' in history
    if config.data.teacher:
        assert (tmp_path / "teacher.tsv").stat().st_size > 0

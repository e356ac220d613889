"""`TrainConfig.load`: a YAML file and flag overrides make one config, built once (what `crossrank train` runs)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from crossrank.cli.main import build_parser
from crossrank.cli.train import overrides_from_args
from crossrank.training import TrainConfig
from crossrank.training.config import with_overrides

RECIPES = sorted((Path(__file__).resolve().parents[2] / "examples" / "recipes").glob("*.yaml"))


def overrides(*argv: str) -> list:
    return overrides_from_args(build_parser().parse_args(["train", *argv]))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_with_flags_is_the_yaml_config_with_the_flags_set(recipe, data_dir, monkeypatch):
    monkeypatch.setenv("CROSSRANK_DATA", str(data_dir))
    flags = overrides("--model", "some/model", "--max-steps", "2", "--eval-steps", "7", "--num-negatives", "3",
                      "--set", "save_steps=2", "--set", "data.sampling=top", "--set", "loss_options={}")
    config = TrainConfig.load(recipe, flags)
    yaml_only = TrainConfig.from_yaml(recipe)
    # the same as building the YAML's config, then setting the flags on its settings and building again
    assert config == TrainConfig.from_dict(with_overrides(yaml_only.to_dict(), flags), source=str(recipe))
    assert (config.model, config.max_steps, config.save_steps, config.data.num_negatives, config.data.sampling,
            config.loss_options, config.eval.steps) == ("some/model", 2, 2, 3, "top", {}, 7)
    assert config.loss == yaml_only.loss and config.data.qrels == yaml_only.data.qrels
    assert TrainConfig.load(recipe) == yaml_only


def test_flags_alone_and_their_order(dev600_data):
    flags = overrides("--model", "m", "--format", "pairs", "--qrels", dev600_data["qrels"],
                      "--set", "data={format: tuples, run: r.trec}", "--set", "data.num_negatives=2", "--set", "loss=bce")
    config = TrainConfig.load(None, flags)
    assert (config.model, config.loss, config.data.format, config.data.run, config.data.num_negatives) == ("m", "bce", "tuples", "r.trec", 2)
    assert config.data.qrels is None  # `--set data=...` replaced the whole mapping the flags had filled
    assert config.eval is None and TrainConfig.load(None, {"model": "m", "eval.steps": 5}).eval.steps == 5


def test_a_yaml_without_model_takes_the_flag_and_errors_name_the_source(tmp_path):
    path = tmp_path / "partial.yaml"
    path.write_text(yaml.safe_dump({"loss": "listnet", "data": {"format": "lists"}}))
    assert TrainConfig.load(path, overrides("--model", "m")).model == "m"
    with pytest.raises(ValueError, match="`model` .* is required"):
        TrainConfig.load(path)
    with pytest.raises(ValueError, match=f"{path}: unknown setting"):
        TrainConfig.load(path, [("model", "m"), ("batchsize", 3)])
    with pytest.raises(ValueError, match="flags: data: unknown setting"):
        TrainConfig.load(None, [("model", "m"), ("data.negatives", 3)])
    with pytest.raises(ValueError, match="setting 'model.name': model is 'm', not a mapping"):
        TrainConfig.load(None, [("model", "m"), ("model.name", "x")])
    with pytest.raises(ValueError, match="--set expects KEY=VALUE"):
        overrides("--set", "loss")


def test_beir_folders_given_as_a_list_take_dotted_settings(data_dir, tmp_path):
    cacm = data_dir / "classic" / "cacm"
    if not (cacm / "corpus.jsonl").is_file():
        pytest.skip(f"cacm not found at {cacm}")
    path = tmp_path / "beir.yaml"
    path.write_text(yaml.safe_dump({"model": "m", "eval": {"beir": [str(cacm)], "metric_for_best": "cacm/nDCG@10"}}))
    config = TrainConfig.load(path, [("eval.beir.queries_per_set", 7)])
    assert config.eval.beir.folders == [str(cacm)] and config.eval.beir.queries_per_set == 7

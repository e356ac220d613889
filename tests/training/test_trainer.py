"""The trainer on real MS MARCO data with a tiny model: config, training, best checkpoint, kill and resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from crossrank import CrossEncoder
from crossrank.training import TrainConfig

PAIRS = [("what is the capital of france", "Paris is the capital of France."), ("what is rba", "The Reserve Bank of Australia.")]


def _config(tiny_model_dir, dev600_data, out, **over) -> dict:
    cfg = {
        "model": str(tiny_model_dir), "output_dir": str(out), "loss": "lambda",
        "loss_options": {"weighting": "ndcg2pp"}, "batch_size": 4, "max_steps": 6, "save_steps": 2,
        "logging_steps": 1, "max_length": 64, "learning_rate": 5e-4,
        "data": {"format": "lists", "num_negatives": 3, **dev600_data},
    }
    cfg.update(over)
    return cfg


def test_config_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown setting.*batchsize"):
        TrainConfig.from_dict({"model": "m", "batchsize": 3})
    with pytest.raises(ValueError, match="data: unknown setting.*negatives"):
        TrainConfig.from_dict({"model": "m", "data": {"negatives": 3}})
    with pytest.raises(ValueError, match="`model`"):
        TrainConfig.from_dict({})
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: m\nloss: [lambda\n")
    with pytest.raises(ValueError, match=r"bad.yaml:\d+: invalid YAML"):
        TrainConfig.from_yaml(bad)


def test_train_keeps_best_checkpoint_and_saves_loadable_model(tiny_model_dir, dev600_data, tmp_path):
    from crossrank.training.trainer import train

    eval_cfg = {**{k: v for k, v in dev600_data.items()}, "split_name": "tune", "depth": 20, "steps": 2}
    config = TrainConfig.from_dict(_config(tiny_model_dir, dev600_data, tmp_path / "out", eval=eval_cfg))
    result = train(config)
    assert result.global_step == 6
    evals = [h for h in result.log_history if "eval_nDCG@10" in h]
    assert [h["step"] for h in evals] == [2, 4, 6]
    assert result.best_metric == pytest.approx(max(h["eval_nDCG@10"] for h in evals))
    losses = [h["loss"] for h in result.log_history if "loss" in h]
    assert len(losses) >= 6 and all(np.isfinite(losses))
    # the saved model is the best checkpoint and loads in crossrank and sentence-transformers
    model = CrossEncoder(result.model_dir)
    best_step = max(evals, key=lambda h: h["eval_nDCG@10"])["step"]
    best_ckpt = CrossEncoder(tmp_path / "out" / f"checkpoint-{best_step}", max_length=64)
    np.testing.assert_allclose(model.predict(PAIRS), best_ckpt.predict(PAIRS), atol=1e-6)
    from sentence_transformers import CrossEncoder as STCrossEncoder

    st = STCrossEncoder(str(result.model_dir))
    np.testing.assert_allclose(st.predict(PAIRS, show_progress_bar=False), model.predict(PAIRS), atol=1e-5)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train(config)


def _run_cli(config_path: Path, *extra: str) -> subprocess.Popen:
    code = "import sys; from crossrank.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, "train", "--config", str(config_path), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tiny_model_dir, dev600_data, tmp_path):
    def write(name):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(_config(tiny_model_dir, dev600_data, tmp_path / name, max_steps=8)))
        return path

    reference = _run_cli(write("reference"))
    out, _ = reference.communicate(timeout=300)
    assert reference.returncode == 0, out

    killed_cfg = write("killed")
    proc = _run_cli(killed_cfg)
    deadline = time.time() + 300
    while not (tmp_path / "killed" / "checkpoint-4" / "trainer_state.json").exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "model").exists()
    # as if killed in the middle of the next save: a newer checkpoint without its trainer state
    torn = tmp_path / "killed" / "checkpoint-99"
    torn.mkdir()
    (torn / "model.safetensors").write_bytes(b"partial")

    resumed = _run_cli(killed_cfg, "--resume")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert not torn.exists()
    history = json.loads((tmp_path / "killed" / "log_history.json").read_text())
    ref_history = json.loads((tmp_path / "reference" / "log_history.json").read_text())
    ref_loss = {h["step"]: h["loss"] for h in ref_history if "loss" in h}
    resumed_loss = {h["step"]: h["loss"] for h in history if "loss" in h}
    # the resumed steps saw the same batches in the same order: same losses
    for step in range(5, 9):
        assert resumed_loss[step] == pytest.approx(ref_loss[step], rel=1e-4)
    a = CrossEncoder(tmp_path / "reference" / "model").predict(PAIRS)
    b = CrossEncoder(tmp_path / "killed" / "model").predict(PAIRS)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_head_learning_rate_gives_the_scoring_head_its_own_rate(tiny_model_dir, tmp_path):
    from transformers import TrainingArguments

    from crossrank.losses import get_loss
    from crossrank.training.trainer import RerankerTrainer, is_head_parameter

    ce = CrossEncoder(tiny_model_dir, max_length=32)
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-5, weight_decay=0.01, report_to="none", use_cpu=True)
    trainer = RerankerTrainer(ce, get_loss("bce"), head_learning_rate=3e-3, args=args, train_dataset=[{}])
    groups = trainer.create_optimizer().param_groups
    names = {id(p): n for n, p in ce.model.named_parameters()}
    for group in groups:
        heads = {is_head_parameter(names[id(p)]) for p in group["params"]}
        assert len(heads) == 1  # a group is all head or all body
        assert group["lr"] == (3e-3 if heads.pop() else 1e-5)
    head = [names[id(p)] for g in groups if g["lr"] == 3e-3 for p in g["params"]]
    assert sorted(head) == ["bert.pooler.dense.bias", "bert.pooler.dense.weight", "classifier.bias", "classifier.weight"]
    assert sum(len(g["params"]) for g in groups) == len(list(ce.model.parameters()))


def test_length_groups_train_the_same_model(tiny_model_dir, dev600_data, tmp_path):
    """Scoring each batch in length-sorted sub-batches changes the padding only: the same losses
    (dropout off, since its masks depend on the tensors' shapes)."""
    import shutil

    from crossrank.training.trainer import train

    model_dir = shutil.copytree(tiny_model_dir, tmp_path / "no-dropout")
    config = json.loads((model_dir / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (model_dir / "config.json").write_text(json.dumps(config))
    results = {}
    for grouped in (True, False):
        cfg = _config(model_dir, dev600_data, tmp_path / f"out-{grouped}", max_steps=4, save_steps=100,
                      length_groups=grouped, precision="fp32", max_length=96)
        result = train(TrainConfig.from_dict(cfg), verbose=False)
        results[grouped] = [h["loss"] for h in result.log_history if "loss" in h]
    # every step's loss (after the first, on weights both runs updated) agrees; the gradients of one
    # step are compared exactly in tests/model/test_batching.py
    assert len(results[True]) == 4 and len(set(results[True])) == 4
    np.testing.assert_allclose(results[True], results[False], rtol=1e-4)


def test_resume_with_other_settings_or_data_is_refused_naming_them(tiny_model_dir, dev600_data, tmp_path):
    from crossrank.training.trainer import train

    first = _config(tiny_model_dir, dev600_data, tmp_path / "out", max_steps=2, save_steps=2)
    train(TrainConfig.from_dict(first), verbose=False)
    assert (tmp_path / "out" / "resume_key.json").exists()
    with pytest.raises(ValueError, match=r"learning_rate: 0\.0005 then, 0\.001 now"):
        train(TrainConfig.from_dict({**first, "learning_rate": 1e-3, "max_steps": 4}), resume=True, verbose=False)
    other_data = {**first, "max_steps": 4, "data": {**first["data"], "num_negatives": 2}}
    with pytest.raises(ValueError, match=r"data\.num_negatives: 3 then, 2 now; training examples: .* not the same ones"):
        train(TrainConfig.from_dict(other_data), resume=True, verbose=False)
    result = train(TrainConfig.from_dict({**first, "max_steps": 4, "logging_steps": 2}), resume=True, verbose=False)
    assert result.global_step == 4  # going on longer, and logging otherwise, are free to change

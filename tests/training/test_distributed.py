"""`crossrank train` under torchrun with 2 CPU processes (DDP over gloo) equals one process with the
same global batch: the same loss at every step; checkpoints and the model written once."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from crossrank import CrossEncoder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def no_dropout_model(tmp_path_factory, minilm_dir):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-no-dropout")
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128, num_labels=1, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(folder)
    return folder


def _config(path, model, data, out, batch_size):
    cfg = {"model": str(model), "output_dir": str(out), "loss": "lambda", "batch_size": batch_size, "max_steps": 6,
           "save_steps": 3, "logging_steps": 1, "max_length": 64, "learning_rate": 1e-3, "warmup_ratio": 0.0,
           "data": {"format": "lists", "num_negatives": 3, **data}}
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_two_processes_match_one_with_the_same_global_batch(no_dropout_model, dev600_data, tmp_path):
    code = [sys.executable, "-m", "crossrank.cli.main", "train", "--config"]
    single = _config(tmp_path / "single.yaml", no_dropout_model, dev600_data, tmp_path / "single", batch_size=4)
    done = subprocess.run(code + [str(single)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    ddp = _config(tmp_path / "ddp.yaml", no_dropout_model, dev600_data, tmp_path / "ddp", batch_size=2)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "--no-python"]
    done = subprocess.run(launcher + code + [str(ddp)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    one = {h["step"]: h["loss"] for h in json.loads((tmp_path / "single" / "log_history.json").read_text()) if "loss" in h}
    two = {h["step"]: h["loss"] for h in json.loads((tmp_path / "ddp" / "log_history.json").read_text()) if "loss" in h}
    assert sorted(one) == sorted(two) == list(range(1, 7))
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=2e-3), step
    # written once, by rank 0: one model folder that loads, one pair of checkpoints
    pairs = [("what is rba", "The Reserve Bank of Australia."), ("define axon", "An axon is a nerve fibre.")]
    assert np.isfinite(CrossEncoder(tmp_path / "ddp" / "model").predict(pairs)).all()
    assert sorted(p.name for p in (tmp_path / "ddp").glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]

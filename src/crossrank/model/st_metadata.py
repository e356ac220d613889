"""The sentence-transformers CrossEncoder metadata written beside a saved model, so that both
crossrank and sentence-transformers (every format generation) read its activation and max length."""
from __future__ import annotations

import json
from pathlib import Path

from crossrank.model.activation import activation_path


def write_st_metadata(folder: Path, activation: str, max_length: int) -> None:
    """Add the sentence-transformers CrossEncoder metadata (every format generation) to a saved model."""
    act_path = activation_path(activation)
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["sentence_transformers"] = {"activation_fn": act_path}
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    files = {
        "config_sentence_transformers.json": {"activation_fn": act_path, "model_type": "CrossEncoder", "prompts": {}, "default_prompt_name": None},
        "modules.json": [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"}],
        "sentence_bert_config.json": {
            "transformer_task": "sequence-classification",
            "modality_config": {"text": {"method": "forward", "method_output_name": "logits"}},
            "module_output_name": "scores",
            "max_seq_length": max_length,
        },
    }
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")

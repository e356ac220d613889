"""Cross-encoder models: loading, tokenising, batching, scoring, saving."""
from crossrank.model.cross_encoder import CrossEncoder
from crossrank.model.loading import minilm_path

__all__ = ["CrossEncoder", "minilm_path"]

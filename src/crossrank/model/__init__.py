"""Cross-encoder models: loading, tokenising, batching, scoring, saving."""
from crossrank.model.cross_encoder import CrossEncoder
from crossrank.model.loading import minilm_path
from crossrank.model.windows import WindowConfig

__all__ = ["CrossEncoder", "WindowConfig", "minilm_path"]

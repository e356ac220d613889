"""The reranking pipeline: candidates from a run or a rerank file -> scores -> a run file."""
from crossrank.pipeline.candidates import Candidates, from_rerank_jsonl, from_run, to_rerank_items
from crossrank.pipeline.rerank import RerankConfig, RerankStats, rerank_run

__all__ = ["Candidates", "RerankConfig", "RerankStats", "from_rerank_jsonl", "from_run", "rerank_run", "to_rerank_items"]

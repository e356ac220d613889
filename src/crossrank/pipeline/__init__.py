"""The reranking pipeline: candidates from a run or a rerank file -> scores (`score`, any ranker) -> a run file."""
from crossrank.data.candidates import Candidates, from_rerank_jsonl, from_run, to_rerank_items, to_run
from crossrank.model.ranker import Ranker, ScoringOptions
from crossrank.pipeline.rerank import RerankConfig, RerankStats, rerank_run
from crossrank.pipeline.scoring import score, score_run

__all__ = ["Candidates", "Ranker", "RerankConfig", "RerankStats", "ScoringOptions", "from_rerank_jsonl", "from_run", "rerank_run",
           "score", "score_run", "to_rerank_items", "to_run"]

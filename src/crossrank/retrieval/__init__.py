"""First-stage retrieval: BM25 over a whole passage collection (bm25s), producing runs to re-rank.

Takes records (``Iterable[Passage]`` / ``Iterable[Query]``), so it works with any reader.
Does not import torch.
"""
from __future__ import annotations

from crossrank.retrieval.analyzer import Analyzer, passage_text
from crossrank.retrieval.bm25 import BM25Index
from crossrank.retrieval.config import BM25Config
from crossrank.retrieval.errors import NotAnIndexError

__all__ = ["Analyzer", "BM25Config", "BM25Index", "NotAnIndexError", "passage_text"]

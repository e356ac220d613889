"""Typed records: the data contract between files, models, runs and metrics.

Ids are always strings (MS MARCO and BEIR ids are kept exactly as written).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Query:
    query_id: str
    text: str


@dataclass(frozen=True, slots=True)
class Passage:
    doc_id: str
    text: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class Qrel:
    query_id: str
    doc_id: str
    relevance: int


@dataclass(frozen=True, slots=True)
class ScoredDoc:
    query_id: str
    doc_id: str
    score: float


@dataclass(frozen=True, slots=True)
class Triple:
    query: str
    positive: str
    negative: str


@dataclass(frozen=True, slots=True)
class RerankItem:
    """One (query, passage) line of a rerank input file (Tevatron's rerank JSONL shape)."""

    query_id: str
    query: str
    doc_id: str
    text: str
    score: float | None = None

"""Reranking evaluation while training: held-out queries with candidate lists."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from crossrank.data.candidates import Candidates
from crossrank.model.ranker import ScoringOptions
from crossrank.pipeline.scoring import score_run


@dataclass
class RerankingEvaluator:
    """Scores each query's candidates with the model and measures the reranked run.

    Positives are not added to the candidates unless `add_positives` is set, so the numbers
    are those of a real reranking of the first stage (queries whose relevant passage was not
    retrieved count as misses, as in the official MS MARCO evaluation).
    """

    name: str
    queries: Mapping[str, str]
    candidates: Mapping[str, Sequence[str]]  # qid -> doc ids, first-stage order
    texts: Mapping[str, str]  # doc id -> passage text
    qrels: Mapping[str, Mapping[str, int]]
    metrics: Sequence[str] = ("RR@10", "nDCG@10", "AP")
    relevance_level: int = 1
    add_positives: bool = False
    batch_size: int | None = None  # None: the model's token budget decides
    history: list[dict] = field(default_factory=list)

    def candidate_lists(self) -> list[Candidates]:
        """Each query with the passages it reranks (first-stage order; first-stage score: minus the rank)."""
        lists = []
        for qid, docs in self.candidates.items():
            docs = list(docs)
            if self.add_positives:
                docs += [d for d, rel in self.qrels.get(qid, {}).items() if rel >= self.relevance_level and d not in docs]
            lists.append(Candidates(qid, self.queries[qid], docs, [self.texts[d] for d in docs], [float(-r) for r in range(len(docs))]))
        return lists

    def rerank(self, model) -> dict[str, dict[str, float]]:
        """The run of `model` (any `Ranker`) over the candidates."""
        return score_run(model, self.candidate_lists(), ScoringOptions(batch_size=self.batch_size))

    def __call__(self, model) -> dict[str, float]:
        result = self.measure(self.rerank(model))
        self.history.append(result)
        return result

    def measure(self, run: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
        from crossrank.evaluation import evaluate

        qrels = {q: dict(self.qrels[q]) for q in self.candidates if q in self.qrels}
        return evaluate(qrels, {q: dict(d) for q, d in run.items()}, metrics=list(self.metrics), relevance_level=self.relevance_level)

    def first_stage(self) -> dict[str, float]:
        """The metrics of the candidates' own order: the number a reranker has to beat."""
        return self.measure({q: {d: float(-rank) for rank, d in enumerate(docs)} for q, docs in self.candidates.items()})

    def without_relevant(self) -> int:
        """Queries none of whose candidates is relevant: no reranking can help them."""
        return sum(
            not any(self.qrels.get(q, {}).get(d, 0) >= self.relevance_level for d in docs) for q, docs in self.candidates.items()
        )


@dataclass
class MultiDatasetEvaluator:
    """Several reranking sets; reports each as `name/metric` and their mean as `metric`."""

    evaluators: Sequence[RerankingEvaluator]

    def __call__(self, model) -> dict[str, float]:
        out: dict[str, float] = {}
        per_metric: dict[str, list[float]] = {}
        for ev in self.evaluators:
            for metric, value in ev(model).items():
                out[f"{ev.name}/{metric}"] = value
                per_metric.setdefault(metric, []).append(value)
        for metric, values in per_metric.items():
            out[metric] = float(np.mean(values))
        return out

    @property
    def candidates(self) -> dict[str, Sequence[str]]:
        return {f"{ev.name}/{q}": docs for ev in self.evaluators for q, docs in ev.candidates.items()}

    def first_stage(self) -> dict[str, float]:
        """The candidates' own order on every set, as `name/metric`, and the mean per metric."""
        out: dict[str, float] = {}
        per_metric: dict[str, list[float]] = {}
        for ev in self.evaluators:
            for metric, value in ev.first_stage().items():
                out[f"{ev.name}/{metric}"] = value
                per_metric.setdefault(metric, []).append(value)
        out.update({metric: float(np.mean(values)) for metric, values in per_metric.items()})
        return out

    def without_relevant(self) -> int:
        return sum(ev.without_relevant() for ev in self.evaluators)

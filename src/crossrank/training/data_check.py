"""The data check printed before training: what the model will learn from, and the number to beat.

Computed from the training examples, the loss and the tokenizer only (no model is loaded), so an
impossible set-up stops in seconds with a clear error instead of after hours of training:
no positive label at all, an empty evaluation set, a loss that compares passages given single
pairs, or a positive-first loss (grouped_ce, mnrl) given lists whose first passage is not the best.
"""
from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from crossrank.training.examples import TrainingExample

#: pairs tokenised for the truncation figures; larger sets are sampled (the table says so)
MAX_TOKENIZED_PAIRS = 20_000


class DataCheckError(ValueError):
    """The training set-up cannot work; raised before any model is loaded."""


@dataclass
class DataCheck:
    """Figures about the training and evaluation data; `problems` make training impossible."""

    loss: str
    queries: int
    examples: int
    pairs: int
    teacher_targets: bool
    positive_pairs: int
    queries_without_positive: int
    positives_as_negatives: int
    max_length: int
    tokenized_pairs: int
    truncated_pairs: int
    truncated_queries: int
    passage_tokens_lost: int
    median_pair_tokens: float
    target_range: tuple[float, float] | None = None  # soft (teacher) targets: lowest and highest
    target_spread: float | None = None  # soft targets: median over lists of (highest - lowest)
    sources: object | None = None  # a `SourceReport` of what building the examples dropped
    eval_queries: int | None = None
    eval_without_relevant: int | None = None
    baseline: dict[str, float] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def truncated_share(self) -> float:
        return self.truncated_pairs / max(self.tokenized_pairs, 1)

    def rows(self) -> list[tuple[str, str]]:
        rows = [
            ("training queries", f"{self.queries:,}"),
            ("training examples / pairs", f"{self.examples:,} / {self.pairs:,}"),
        ]
        if self.teacher_targets:
            spread = "" if self.target_range is None else (
                f" from {self.target_range[0]:.3g} to {self.target_range[1]:.3g}; spread within a list (highest - lowest): "
                f"median {self.target_spread:.3g}")
            rows.append(("targets", "teacher scores (distillation)" + spread))
        else:
            rows.append(("label balance", f"{self.positive_pairs:,} positive / {self.pairs - self.positive_pairs:,} "
                                          f"negative pairs ({_pct(self.positive_pairs, self.pairs)} positive)"))
            rows.append(("queries with no positive", f"{self.queries_without_positive:,} ({_pct(self.queries_without_positive, self.queries)} of queries)"))
            rows.append(("positives also used as negatives", f"{self.positives_as_negatives:,} (query, passage) pairs"))
        if self.sources is not None:
            rows += self.sources.rows()
        sampled = "" if self.tokenized_pairs == self.pairs else f", {self.tokenized_pairs:,} pairs sampled"
        rows.append((f"pairs truncated at max_length {self.max_length}",
                     f"{self.truncated_pairs:,} ({self.truncated_share:.1%}{sampled}); "
                     f"{self.passage_tokens_lost:,} passage tokens lost; {self.truncated_queries:,} queries cut"))
        rows.append(("median pair length", f"{self.median_pair_tokens:.0f} tokens"))
        if self.eval_queries is not None:
            rows.append(("evaluation queries", f"{self.eval_queries:,} ({self.eval_without_relevant or 0:,} with no relevant candidate)"))
        if self.baseline:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in self.baseline.items() if "/" not in k)
            rows.append(("first-stage baseline (to beat)", shown))
        return rows

    def table(self) -> str:
        rows = self.rows()
        width = max(len(k) for k, _ in rows)
        lines = [f"data check ({self.loss} loss)", "-" * (width + 40)]
        lines += [f"{k:<{width}}  {v}" for k, v in rows]
        lines += [f"PROBLEM: {p}" for p in self.problems]
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = ["| check | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in self.rows()]
        return "\n".join(lines + [f"\n**Problem:** {p}" for p in self.problems])

    def raise_problems(self) -> None:
        if self.problems:
            raise DataCheckError("training cannot work with this set-up:\n- " + "\n- ".join(self.problems))


def check_data(examples: Sequence[TrainingExample], loss, tokenizer=None, *, max_length: int = 256, evaluator=None,
               seed: int = 0, distilled: bool = False, sources=None) -> DataCheck:
    """Figures and problems of a training set-up. `loss` is a `RankingLoss`; `tokenizer` a
    `PairTokenizer` (None skips the truncation figures); `evaluator` a reranking evaluator or None;
    `distilled`: the targets are a teacher's scores (any loss then reads them as soft targets; targets
    that are not whole grades are read so too); `sources`: a `SourceReport` of what was dropped."""
    problems: list[str] = []
    soft = any(float(t) != int(t) for e in examples for t in e.targets if np.isfinite(t))
    teacher = distilled or soft or bool(getattr(loss, "teacher_targets", False))
    name = getattr(loss, "name", type(loss).__name__)
    pairs = sum(len(e.passages) for e in examples)
    queries = len({e.query_id or e.query for e in examples})
    positive = sum(t > 0 for e in examples for t in e.targets)
    with_positive = {e.query_id or e.query for e in examples if any(t > 0 for t in e.targets)}
    without = queries - len(with_positive)

    if not examples:
        problems.append("no training examples")
    elif not teacher and positive == 0 and not getattr(loss, "positive_first", False):
        problems.append(f"no positive label among {pairs:,} training pairs: every target is 0, so the model can only "
                        "learn to give every pair the same score (check the qrels and the query ids of the run)")
    need = getattr(loss, "min_passages", 1)
    if examples and need > 1 and max(len(e.passages) for e in examples) < need:
        problems.append(f"loss {name!r} compares passages of one query, but every example has a single passage "
                        "(format 'pairs'): use format 'lists', 'tuples' or 'groups', or a pointwise loss (bce)")
    if getattr(loss, "positive_first", False) and not teacher:
        misplaced = sum(len(e.targets) > 1 and e.targets[0] < max(e.targets) for e in examples)
        if misplaced:
            problems.append(f"loss {name!r} takes the first passage of each list as its positive, but in {misplaced:,} "
                            "examples it is not the best-labelled one: use format 'tuples' or 'groups' (positive first)")

    stats = _truncation(examples, tokenizer, seed) if tokenizer is not None else (0, 0, 0, 0, 0.0)
    check = DataCheck(
        loss=name, queries=queries, examples=len(examples), pairs=pairs, teacher_targets=teacher, positive_pairs=positive,
        queries_without_positive=without, positives_as_negatives=0 if teacher else _positives_as_negatives(examples),
        max_length=int(getattr(tokenizer, "max_length", max_length)), tokenized_pairs=stats[0], truncated_pairs=stats[1],
        truncated_queries=stats[2], passage_tokens_lost=stats[3], median_pair_tokens=stats[4], problems=problems, sources=sources,
    )
    if teacher and pairs:
        check.target_range = (float(min(t for e in examples for t in e.targets)), float(max(t for e in examples for t in e.targets)))
        check.target_spread = float(np.median([max(e.targets) - min(e.targets) for e in examples if e.targets]))
    if evaluator is not None:
        candidates = getattr(evaluator, "candidates", {}) or {}
        check.eval_queries = len(candidates)
        if not candidates or not any(len(d) for d in candidates.values()):
            problems.append("the evaluation set is empty: no held-out query has candidates (check eval.split and eval.run)")
        else:
            check.eval_without_relevant = evaluator.without_relevant()
            check.baseline = evaluator.first_stage()
    return check


def _positives_as_negatives(examples: Sequence[TrainingExample]) -> int:
    """(query, passage) pairs labelled positive in one place and 0 in another."""
    seen: dict[tuple[str, str], set[bool]] = defaultdict(set)
    for e in examples:
        q = e.query_id or e.query
        ids = e.doc_ids if len(e.doc_ids) == len(e.passages) else e.passages
        for doc, target in zip(ids, e.targets):
            seen[(q, doc)].add(target > 0)
    return sum(len(kinds) == 2 for kinds in seen.values())


def _truncation(examples: Sequence[TrainingExample], tokenizer, seed: int) -> tuple[int, int, int, int, float]:
    """(pairs tokenised, pairs truncated, queries cut, passage tokens lost, median pair length)."""
    flat = [(e.query, p) for e in examples for p in e.passages]
    if len(flat) > MAX_TOKENIZED_PAIRS:
        flat = random.Random(seed).sample(flat, MAX_TOKENIZED_PAIRS)
    if not flat:
        return 0, 0, 0, 0, 0.0
    queries = sorted({q for q, _ in flat})
    q_len = dict(zip(queries, (len(enc.ids) for enc in tokenizer.encode_texts(queries))))
    p_len = np.array([len(enc.ids) for enc in tokenizer.encode_texts([p for _, p in flat])])
    nq = np.array([q_len[q] for q, _ in flat])
    budget = tokenizer.max_length - tokenizer.n_special
    keep_q = np.minimum(nq, budget - 1)  # the rule of PairTokenizer.combine: the passage gives up tokens first
    truncated = nq + p_len > budget
    lost = np.where(truncated, np.maximum(p_len - (budget - keep_q), 0), 0)
    lengths = np.minimum(nq + p_len, budget) + tokenizer.n_special
    return len(flat), int(truncated.sum()), int((nq > budget - 1).sum()), int(lost.sum()), float(np.median(lengths))


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"

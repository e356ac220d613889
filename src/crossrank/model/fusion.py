"""Score fusion: the cross-encoder's scores combined with a bi-encoder's cosine and the first stage.

Each query's candidate scores from every scorer are z-normalised (mean 0, standard deviation 1
within the list) and summed with fixed weights. Different scorers make different mistakes, so a
weighted sum of normalised scores ranks better than any one of them when each is good but
imperfect -- the usual case for a cross-encoder trained on little data.

Optionally the bi-encoder's query vector then takes pseudo-relevance feedback (Rocchio): it moves
toward the mean vector of the passages the first fused ranking put on top, the passages are scored
again by cosine with it, and the lists are fused once more. Queries with many relevant passages
(TREC DL's graded judgements) gain most: relevant passages tend to resemble each other.

Any one weight may be 0 -- the cross-encoder's too: a dense- or first-stage-only "fusion" is what
`crossrank.training.fusion_choice.choose_fusion` picks when fusing does not beat an input alone, and
`FusedReranker` then never runs the cross-encoder. How a setting was chosen travels with it as a
`FusionChoice`, kept in fusion.json under "chosen_on".
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from crossrank.data.atomic import atomic_write
from crossrank.data.candidates import Candidates
from crossrank.model.ranker import ScoringOptions, candidate_lists_of

FUSION_FILE = "fusion.json"
#: a fused setting must beat the best single input by more than this to be chosen (`crossrank.training.fusion_choice`)
MIN_GAIN = 0.002


@dataclass
class FusionWeights:
    cross_encoder: float = 1.0
    dense: float = 0.0
    first_stage: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not np.isfinite(value):
                raise ValueError(f"FusionWeights expects finite weights, but got {name}={value}")
        if not any(asdict(self).values()):
            raise ValueError("FusionWeights expects at least one non-zero weight, but got all three 0 "
                             f"(cross_encoder={self.cross_encoder}, dense={self.dense}, first_stage={self.first_stage})")

    def nonzero(self) -> list[str]:
        """Names of the scorers with a non-zero weight, in field order."""
        return [name for name, value in asdict(self).items() if value]


@dataclass
class Feedback:
    """Rocchio feedback on the dense query vector: `depth` top passages averaged in with `weight` (0: off).

    Defaults are the usual ones for dense retrievers (the 3 top passages, weight 1 on their mean).
    """

    depth: int = 0
    weight: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 0:
            raise ValueError(f"Feedback expects depth to be an integer >= 0, but got {self.depth!r}")
        if not np.isfinite(self.weight) or self.weight < 0:
            raise ValueError(f"Feedback expects a finite weight >= 0, but got {self.weight!r}")


def rocchio(query: np.ndarray, passages: np.ndarray, ranking: np.ndarray, depth: int, weight: float) -> np.ndarray:
    """Cosines of `passages` (rows, unit vectors) with the query vector moved toward its `depth` best-ranked ones.

    The new query is ``normalise(query + weight * mean(passages[top depth by ranking]))``.
    """
    query = np.asarray(query, dtype=np.float64)
    passages = np.asarray(passages, dtype=np.float64)
    ranking = np.asarray(ranking, dtype=np.float64)
    if query.ndim != 1 or passages.ndim != 2 or passages.shape[1] != query.shape[0]:
        raise ValueError(f"rocchio expects a (dim,) query and (n, dim) passages, but got {query.shape} and {passages.shape}")
    if ranking.shape != (passages.shape[0],):
        raise ValueError(f"rocchio expects one ranking score per passage ({passages.shape[0]}), but got shape {ranking.shape}")
    if depth < 1:
        raise ValueError(f"rocchio expects depth >= 1, but got {depth}")
    if passages.shape[0] == 0:
        return np.zeros(0, dtype=np.float32)
    top = np.argsort(-ranking, kind="stable")[:depth]
    moved = query + weight * passages[top].mean(axis=0)
    norm = np.linalg.norm(moved)
    moved = moved / norm if norm > 0 else query
    return (passages @ moved).astype(np.float32)


def znorm(scores: np.ndarray) -> np.ndarray:
    """Scores shifted to mean 0 and scaled to standard deviation 1 (constant lists become zeros)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    std = scores.std()
    return (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)


def fuse(weights: FusionWeights, cross_encoder: np.ndarray | None, dense: np.ndarray | None = None,
         first_stage: np.ndarray | None = None) -> np.ndarray:
    """Weighted sum of one query's z-normalised scores; a scorer with weight 0 may be None (the cross-encoder too)."""
    parts = []
    for name, scores in (("cross_encoder", cross_encoder), ("dense", dense), ("first_stage", first_stage)):
        w = getattr(weights, name)
        if w == 0:
            continue
        if scores is None:
            raise ValueError(f"fusion weight {name}={w} needs {name} scores, but none were given")
        parts.append((name, w * znorm(scores)))
    shapes = {name: part.shape for name, part in parts}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"fuse expects one score per candidate from every weighted scorer, but got shapes {shapes}")
    total = parts[0][1]
    for _, part in parts[1:]:
        total = total + part
    return total.astype(np.float32)


def fuse_lists(weights: FusionWeights, cross_encoder: Sequence[np.ndarray] | None,
               dense_vectors: Sequence[tuple[np.ndarray, np.ndarray]] | None, first_stage: Sequence[np.ndarray | None] | None,
               feedback: Feedback | None = None) -> list[np.ndarray]:
    """Fused scores of each query's list; with feedback, the dense cosines are recomputed after a first fusion.

    A scorer whose weight is 0 may be None (no list at all); the number of queries comes from the others.
    """
    given = [len(x) for x in (cross_encoder, dense_vectors, first_stage) if x is not None]
    if not given:
        raise ValueError("fuse_lists expects the scores of at least one scorer, but got none")
    n = given[0]
    if any(g != n for g in given):
        raise ValueError(f"fuse_lists expects one entry per query ({n}) from every scorer, but got {given}")
    ce = cross_encoder if cross_encoder is not None else [None] * n
    stage = first_stage if first_stage is not None else [None] * n
    dense = [p @ q for q, p in dense_vectors] if dense_vectors is not None else [None] * n
    fused = [fuse(weights, c, d, s) for c, d, s in zip(ce, dense, stage)]
    if feedback is None or not feedback.depth or dense_vectors is None or not weights.dense:
        return fused
    return [fuse(weights, c, rocchio(q, p, f, feedback.depth, feedback.weight), s)
            for c, (q, p), s, f in zip(ce, dense_vectors, stage, fused)]


def _same_feedback(a: Feedback, b: Feedback) -> bool:
    return a == b or (not a.depth and not b.depth)  # feedback off is off, whatever its weight


@dataclass
class FusionChoice:
    """What `crossrank.training.fusion_choice.choose_fusion` chose, and on what (fusion.json's "chosen_on").

    Attributes:
        weights, feedback: the setting to use (`FusedReranker(model, dense, choice.weights, choice.feedback)`).
        value: its metric value on the held-out queries.
        inputs: each single input's value alone, keyed by FusionWeights' field names (the bi-encoder
            with the better of the feedback options); only the inputs that were given.
        best_fused_value: the best setting of two or more inputs (None when only one input was given).
        reason: a sentence saying why this setting, e.g. "fused 0.4012 beats the best single input
            (bi-encoder 0.3950) by 0.0062 (nDCG@10 on 200 held-out queries)".
        metric, n_queries: the measure and the number of judged queries it averaged over.
        min_gain: the margin the fused setting had to beat the best input by.
    """

    weights: FusionWeights
    feedback: Feedback
    value: float
    inputs: dict[str, float]
    best_fused_value: float | None
    reason: str
    metric: str
    n_queries: int
    min_gain: float = MIN_GAIN

    @property
    def fused(self) -> bool:
        """Whether two or more inputs have a non-zero weight (False: one input alone)."""
        return len(self.weights.nonzero()) > 1

    def record(self) -> dict:
        """What fusion.json keeps under "chosen_on" (the weights and feedback are stored beside it)."""
        return {"reason": self.reason, "metric": self.metric, "n_queries": self.n_queries, "value": self.value,
                "best_fused_value": self.best_fused_value, "inputs": dict(self.inputs), "min_gain": self.min_gain}

    @classmethod
    def from_record(cls, weights: FusionWeights, feedback: Feedback, record: Mapping, source: str = "fusion.json") -> "FusionChoice":
        """The choice back from `record()`'s output and the weights and feedback stored beside it."""
        keys = ("reason", "metric", "n_queries", "value", "best_fused_value", "inputs")
        if not isinstance(record, Mapping) or any(k not in record for k in keys) or not isinstance(record["inputs"], Mapping):
            raise ValueError(f"{source}: 'chosen_on' expects the keys {', '.join(keys)} (inputs a mapping), but got {record!r}")
        best = record["best_fused_value"]
        return cls(weights, feedback, float(record["value"]), {k: float(v) for k, v in record["inputs"].items()},
                   None if best is None else float(best), str(record["reason"]), str(record["metric"]), int(record["n_queries"]),
                   float(record.get("min_gain", MIN_GAIN)))


class FusedReranker:
    """A CrossEncoder whose scores are fused with a DenseEncoder's cosine and the first-stage scores.

    Use it wherever a CrossEncoder reranks candidate lists (it is a `crossrank.model.ranker.Ranker`:
    `score_candidates`, the pipeline's `score` and `rerank_run`); `predict` on single pairs stays the cross-encoder's own. With `feedback`
    (a `Feedback` of depth > 0) the dense scores take Rocchio feedback from the first fused ranking.
    With a cross-encoder weight of 0, `rerank_many` never runs the cross-encoder. `choice` (a
    `FusionChoice` of these weights and feedback) is how they were chosen: `save_weights` records it.
    """

    def __init__(self, cross_encoder, dense=None, weights: FusionWeights | None = None, feedback: Feedback | None = None,
                 *, choice=None):
        self.cross_encoder = cross_encoder
        self.dense = dense
        self.weights = weights or FusionWeights()
        self.feedback = feedback or Feedback()
        if self.weights.dense and dense is None:
            raise ValueError("FusedReranker with a dense weight needs a DenseEncoder")
        if self.feedback.depth and not self.weights.dense:
            raise ValueError("FusedReranker feedback works on the dense scores, but the dense weight is 0")
        self.choice = self._checked_choice(choice)

    def _checked_choice(self, choice):
        if choice is None:
            return None
        if not (hasattr(choice, "record") and hasattr(choice, "weights") and hasattr(choice, "feedback")):
            raise ValueError(f"FusedReranker expects choice to be a FusionChoice, but got {type(choice).__name__}")
        if choice.weights != self.weights or not _same_feedback(choice.feedback, self.feedback):
            raise ValueError(f"FusedReranker expects the choice to be of its own weights {asdict(self.weights)} and feedback "
                             f"{asdict(self.feedback)}, but got {asdict(choice.weights)} and {asdict(choice.feedback)}")
        return choice

    def predict(self, *args, **kwargs):
        return self.cross_encoder.predict(*args, **kwargs)

    def rerank_many(self, queries, candidate_lists, first_stage=None, batch_size: int | None = None, show_progress_bar=None,
                    activation=None, *, long_passages: str = "truncate", window=None) -> list[np.ndarray]:
        """Fused scores per query of bare texts (`score_candidates` on them)."""
        options = ScoringOptions(batch_size=batch_size, show_progress_bar=show_progress_bar, long_passages=long_passages, window=window)
        return self.score_candidates(candidate_lists_of(queries, candidate_lists, first_stage), options)

    def score_candidates(self, candidates: Sequence[Candidates], options: ScoringOptions | None = None) -> list[np.ndarray]:
        """Fused scores per query (the `crossrank.model.ranker.Ranker` protocol); `options` go to the
        cross-encoder, whose scores are fused after its own activation (the one the weights were chosen on).

        The cross-encoder runs only when its weight is non-zero, the bi-encoder only when the dense one is.
        """
        options = replace(options or ScoringOptions(), activation=None)
        ce = self.cross_encoder.score_candidates(candidates, options) if self.weights.cross_encoder else None
        queries, texts = [c.query for c in candidates], [c.texts for c in candidates]
        vectors = self.dense.encode_lists(queries, texts, show_progress=False) if self.weights.dense else None
        stage = None
        if self.weights.first_stage:
            if any(s is None for c in candidates for s in c.first_stage):
                raise ValueError("fusion with a first-stage weight needs first-stage scores for every candidate")
            stage = [np.asarray(c.first_stage, dtype=np.float64) for c in candidates]
        return fuse_lists(self.weights, ce, vectors, stage, self.feedback)

    def identity(self) -> str:
        """What decides the fused scores: the cross-encoder, the bi-encoder, the weights and the feedback."""
        parts = [self.cross_encoder.identity() if self.weights.cross_encoder else "-",
                 self.dense.identity() if self.weights.dense else "-", json.dumps([asdict(self.weights), asdict(self.feedback)])]
        return "|".join(parts)

    def save_weights(self, folder: str | os.PathLike, choice=None) -> Path:
        """Write the weights (and the dense model's location) beside a saved cross-encoder.

        `choice` (default: the reranker's own, if any), a `FusionChoice` of these weights and feedback,
        goes in under "chosen_on": its reason, metric, number of queries, values and each input's value.
        """
        choice = self._checked_choice(choice) if choice is not None else self.choice
        path = Path(folder) / FUSION_FILE
        content = {"weights": asdict(self.weights), "feedback": asdict(self.feedback), "dense_model": str(self.dense.path) if self.dense is not None else None}
        if choice is not None:
            content["chosen_on"] = choice.record()
        with atomic_write(path) as f:
            f.write(json.dumps(content, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, folder: str | os.PathLike, **cross_encoder_kwargs) -> "FusedReranker":
        """A cross-encoder folder with a fusion.json beside it (as written by `save_weights`; "chosen_on" optional)."""
        from crossrank.model.cross_encoder import CrossEncoder
        from crossrank.model.dense import DenseEncoder

        folder = Path(folder)
        spec_file = folder / FUSION_FILE
        if not spec_file.exists():
            raise FileNotFoundError(f"{spec_file}: no fusion weights beside this model")
        spec = json.loads(spec_file.read_text(encoding="utf-8"))
        weights = FusionWeights(**spec["weights"])
        feedback = Feedback(**spec.get("feedback", {}))  # files written before feedback existed have none
        choice = None
        if spec.get("chosen_on") is not None:  # files written before choose_fusion existed have none
            choice = FusionChoice.from_record(weights, feedback, spec["chosen_on"], source=str(spec_file))
        dense = DenseEncoder(spec["dense_model"]) if weights.dense and spec.get("dense_model") else None
        return cls(CrossEncoder(folder, **cross_encoder_kwargs), dense, weights, feedback, choice=choice)

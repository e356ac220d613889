"""Ensemble teachers: any scorer crossrank runs, fused, labels candidate lists for distillation.

A teacher here is a fusion (`crossrank.model.fusion`) of a bi-encoder's cosine, the first stage's
(BM25) scores and optionally a cross-encoder's logits, with optional dense feedback from its own
first fused ranking. Per list its fused score is z-normalised, so a target is

    ``scale * znorm(fused teacher score) + label_weight * label``

whatever the scorers' own ranges: `scale` is the listwise losses' inverse temperature, and the
label weight keeps judged positives on top where the teacher disagrees (0 for pseudo-queries,
whose "label" is a guess). Cross-encoder scores are cached by pair (`teacher_cache`), so a killed
labelling run resumes where it stopped; bi-encoder vectors and BM25 scores are cheap and recomputed.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from crossrank.model.fusion import Feedback, FusionWeights, fuse_lists, znorm

logger = logging.getLogger(__name__)


@dataclass
class TeacherConfig:
    """Which scorers teach, with which weights, and how fused scores become targets."""

    dense: float = 4.0  # the bi-encoder's cosine
    first_stage: float = 1.0  # BM25 (or the run's) scores
    cross_encoder: float = 0.0  # a cross-encoder teacher's logits (needs cross_encoder_model)
    feedback_depth: int = 3  # Rocchio feedback on the bi-encoder query from the teacher's fused top 3 (0: off)
    feedback_weight: float = 1.0
    scale: float = 2.0
    label_weight: float = 0.0
    dense_model: str = "minilm"
    cross_encoder_model: str | None = None
    cache: str | None = None  # pair -> cross-encoder teacher score, TSV (resumable)

    def __post_init__(self) -> None:
        for name in ("dense", "first_stage", "cross_encoder", "feedback_weight", "label_weight"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"teacher `{name}` must be a finite number >= 0, but got {value!r}")
        if not (self.dense or self.first_stage or self.cross_encoder):
            raise ValueError("a teacher needs at least one scorer with a weight > 0 (dense, first_stage or cross_encoder)")
        if self.cross_encoder and not self.cross_encoder_model:
            raise ValueError("teacher `cross_encoder` weight > 0 needs `cross_encoder_model`")
        if not np.isfinite(self.scale) or self.scale <= 0:
            raise ValueError(f"teacher `scale` must be > 0, but got {self.scale!r}")
        from crossrank.data.ranges import Range, check_ranges

        check_ranges("teacher", self, {"feedback_depth": Range(0, integer=True)})
        Feedback(self.feedback_depth, self.feedback_weight)  # checks depth and weight

    @property
    def weights(self) -> FusionWeights:
        return FusionWeights(cross_encoder=self.cross_encoder, dense=self.dense, first_stage=self.first_stage)

    @property
    def feedback(self) -> Feedback:
        return Feedback(self.feedback_depth if self.dense else 0, self.feedback_weight)

    def describe(self) -> str:
        parts = [f"{w:g} x {name}" for name, w in (("bi-encoder", self.dense), ("BM25", self.first_stage),
                                                   ("cross-encoder", self.cross_encoder)) if w]
        fb = f", feedback top {self.feedback_depth}" if self.feedback.depth else ""
        return " + ".join(parts) + fb


class EnsembleTeacher:
    """Scores candidate lists (`crossrank.pipeline.Candidates`: query, texts, first-stage scores) as `config` says.

    `dense` / `cross_encoder` are loaded models (DenseEncoder, CrossEncoder) or None to load them
    from the config's names when first needed.
    """

    def __init__(self, config: TeacherConfig, dense=None, cross_encoder=None):
        self.config = config
        self._dense = dense
        self._cross_encoder = cross_encoder

    @property
    def dense(self):
        if self._dense is None and self.config.dense:
            from crossrank.training.distillation import load_teacher

            self._dense = load_teacher(self.config.dense_model, "bi-encoder")
        return self._dense

    def scores(self, lists: Sequence, show_progress: bool = True, vectors=None) -> list[np.ndarray]:
        """Each list's fused teacher score, z-normalised within the list (`vectors`: the bi-encoder's
        per-list (query, passages) vectors where already computed)."""
        cfg = self.config
        queries = [c.query for c in lists]
        texts = [list(c.texts) for c in lists]
        ce = [np.zeros(len(t)) for t in texts]
        if cfg.cross_encoder:
            from crossrank.training.distillation import teacher_scores

            flat = teacher_scores([(q, p) for q, ps in zip(queries, texts) for p in ps], self._cross_encoder or cfg.cross_encoder_model,
                                  cfg.cache, kind="cross-encoder")
            ends = np.cumsum([len(t) for t in texts])
            ce = [flat[e - len(t): e] for e, t in zip(ends, texts)]
        if cfg.dense and vectors is None:
            vectors = self.dense.encode_lists(queries, texts, show_progress=show_progress)
        elif vectors is not None and len(vectors) != len(lists):
            raise ValueError(f"teacher scores expect one (query, passages) vector pair per list ({len(lists)}), but got {len(vectors)}")
        stage = [None] * len(lists)
        if cfg.first_stage:
            if any(s is None for c in lists for s in c.first_stage):
                raise ValueError("a teacher with a first_stage weight needs first-stage scores for every candidate")
            stage = [np.asarray(c.first_stage, dtype=np.float64) for c in lists]
        fused = fuse_lists(cfg.weights, ce, vectors, stage, cfg.feedback)
        return [znorm(f).astype(np.float32) for f in fused]

    def targets(self, lists: Sequence, labels: Sequence[Sequence[float]] | None = None, show_progress: bool = True,
                vectors=None) -> list[list[float]]:
        """`scale * znorm(fused) + label_weight * label` per candidate (labels default to 0)."""
        cfg = self.config
        out = []
        for i, s in enumerate(self.scores(lists, show_progress, vectors)):
            lab = np.asarray(labels[i], dtype=np.float64) if labels is not None else np.zeros(len(s))
            if lab.shape != s.shape:
                raise ValueError(f"teacher targets: list {i} has {len(s)} candidates but {len(lab)} labels")
            out.append([float(v) for v in cfg.scale * s + cfg.label_weight * lab])
        return out

    def as_dict(self) -> dict:
        return asdict(self.config)


def choose_teacher(lists: Sequence, qrels, vectors, *, metric: str = "RR@10", min_gain: float = 0.005,
                   base: TeacherConfig | None = None):
    """The teacher's weights chosen on labelled queries (never on test queries): the bi-encoder, BM25 or
    their fusion, with or without feedback, as `crossrank.training.fusion_choice.choose_fusion` picks by
    `metric`; a fusion must beat its best input by `min_gain`. Returns (TeacherConfig, FusionChoice)."""
    from crossrank.training.fusion_choice import choose_fusion

    choice = choose_fusion([c.query_id for c in lists], [c.doc_ids for c in lists], None, vectors,
                           [np.asarray(c.first_stage, dtype=np.float64) for c in lists], qrels, metric=metric, min_gain=min_gain)
    base = base or TeacherConfig()
    values = {**asdict(base), "dense": choice.weights.dense, "first_stage": choice.weights.first_stage, "cross_encoder": 0.0,
              "feedback_depth": choice.feedback.depth, "feedback_weight": choice.feedback.weight}
    return TeacherConfig(**values), choice

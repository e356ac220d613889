"""Distillation: a teacher's scores, computed once and cached, become the targets.

The teacher is a cross-encoder (its logits) or a bi-encoder (the cosine of the query's and the
passage's embeddings, `crossrank.model.dense.DenseEncoder`). Targets are
`teacher_scale * score + label_weight * label`: a scale sharpens or flattens the teacher's
distribution for listwise losses, and a label weight keeps the judged positives on top where the
teacher disagrees.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from crossrank.data import atomic_write, open_text
from crossrank.training.config import TEACHER_KINDS
from crossrank.training.examples import TrainingExample

logger = logging.getLogger(__name__)


def pair_key(query: str, passage: str) -> str:
    return hashlib.sha1(f"{query}\x00{passage}".encode("utf-8")).hexdigest()


def load_score_cache(path: Path) -> dict[str, float]:
    cache: dict[str, float] = {}
    if not path.exists():
        return cache
    with open_text(path) as f:  # a .gz cache is read as atomic_write wrote it: compressed
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 2:
                raise ValueError(f"{path}:{lineno}: expected 2 tab-separated fields (pair key, score), got {len(parts)}")
            try:
                cache[parts[0]] = float(parts[1])
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: score {parts[1]!r} is not a number") from exc
    return cache


def save_score_cache(path: Path, cache: dict[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        for key, score in cache.items():
            f.write(f"{key}\t{score!r}\n")


def load_teacher(teacher, kind: str = "cross-encoder"):
    """A teacher from a model path or hub id (`minilm`: the all-MiniLM-L6-v2 folder); models pass through."""
    if kind not in TEACHER_KINDS:
        raise ValueError(f"teacher kind must be one of {', '.join(TEACHER_KINDS)}, but got {kind!r}")
    if not isinstance(teacher, (str, os.PathLike)):
        return teacher
    from crossrank.model.loading import resolve_model_name

    teacher = resolve_model_name(teacher)
    if kind == "bi-encoder":
        from crossrank.model.dense import DenseEncoder

        return DenseEncoder(teacher)
    from crossrank.model import CrossEncoder

    return CrossEncoder(teacher)


def _score(teacher, pairs: list[tuple[str, str]], batch_size: int) -> np.ndarray:
    if hasattr(teacher, "score_pairs"):  # a bi-encoder: cosine of the two embeddings
        return teacher.score_pairs(pairs, show_progress=True)
    return teacher.predict(pairs, batch_size=batch_size, activation="identity")


def teacher_scores(pairs: list[tuple[str, str]], teacher, cache_path: str | Path | None = None, batch_size: int = 64,
                   kind: str = "cross-encoder") -> np.ndarray:
    """Scores of `teacher` (a CrossEncoder, a DenseEncoder, or a model path of `kind`) for pairs;
    only pairs missing from the cache are scored."""
    cache_file = Path(cache_path) if cache_path else None
    cache = load_score_cache(cache_file) if cache_file else {}
    keys = [pair_key(q, p) for q, p in pairs]
    todo = sorted({k: i for i, k in enumerate(keys) if k not in cache}.values())
    if todo:
        teacher = load_teacher(teacher, kind)
        logger.info("teacher scores %d new pairs (%d cached)", len(todo), len(pairs) - len(todo))
        scores = _score(teacher, [pairs[i] for i in todo], batch_size)
        for i, s in zip(todo, scores):
            cache[keys[i]] = float(s)
        if cache_file:
            save_score_cache(cache_file, cache)
    return np.array([cache[k] for k in keys], dtype=np.float32)


def apply_teacher_scores(examples: list[TrainingExample], teacher, cache_path=None, kind: str = "cross-encoder",
                         scale: float = 1.0, label_weight: float = 0.0) -> list[TrainingExample]:
    """Each example's targets become `scale * teacher score + label_weight * label` of its passages."""
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"teacher_scale must be a positive number, but got {scale!r}")
    if not np.isfinite(label_weight):
        raise ValueError(f"label_weight must be a number, but got {label_weight!r}")
    pairs = [(e.query, p) for e in examples for p in e.passages]
    scores = teacher_scores(pairs, teacher, cache_path, kind=kind)
    out, start = [], 0
    for e in examples:
        n = len(e.passages)
        targets = [float(scale * s + label_weight * label) for s, label in zip(scores[start : start + n], e.targets)]
        out.append(TrainingExample(e.query, e.passages, targets, e.query_id, e.doc_ids))
        start += n
    return out

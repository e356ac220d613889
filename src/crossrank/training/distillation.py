"""Distillation: a teacher cross-encoder's scores, computed once and cached, become the targets."""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from crossrank.training.examples import TrainingExample

logger = logging.getLogger(__name__)


def pair_key(query: str, passage: str) -> str:
    return hashlib.sha1(f"{query}\x00{passage}".encode("utf-8")).hexdigest()


def load_score_cache(path: Path) -> dict[str, float]:
    cache: dict[str, float] = {}
    if not path.exists():
        return cache
    with path.open(encoding="utf-8") as f:
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
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for key, score in cache.items():
            f.write(f"{key}\t{score!r}\n")
    os.replace(tmp, path)


def teacher_scores(pairs: list[tuple[str, str]], teacher, cache_path: str | Path | None = None, batch_size: int = 64) -> np.ndarray:
    """Scores of `teacher` (a CrossEncoder or a model path) for pairs; only unseen pairs are scored."""
    cache_file = Path(cache_path) if cache_path else None
    cache = load_score_cache(cache_file) if cache_file else {}
    keys = [pair_key(q, p) for q, p in pairs]
    todo = sorted({k: i for i, k in enumerate(keys) if k not in cache}.values())
    if todo:
        if isinstance(teacher, (str, os.PathLike)):
            from crossrank.model import CrossEncoder

            teacher = CrossEncoder(teacher)
        logger.info("teacher scores %d new pairs (%d cached)", len(todo), len(pairs) - len(todo))
        scores = teacher.predict([pairs[i] for i in todo], batch_size=batch_size, activation="identity")
        for i, s in zip(todo, scores):
            cache[keys[i]] = float(s)
        if cache_file:
            save_score_cache(cache_file, cache)
    return np.array([cache[k] for k in keys], dtype=np.float32)


def apply_teacher_scores(examples: list[TrainingExample], teacher, cache_path=None) -> list[TrainingExample]:
    """Replace each example's targets by the teacher's scores of its passages."""
    pairs = [(e.query, p) for e in examples for p in e.passages]
    scores = teacher_scores(pairs, teacher, cache_path)
    out, start = [], 0
    for e in examples:
        n = len(e.passages)
        out.append(TrainingExample(e.query, e.passages, [float(s) for s in scores[start : start + n]], e.query_id, e.doc_ids))
        start += n
    return out

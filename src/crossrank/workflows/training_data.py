"""The quickstart's training data: judged queries and pseudo-queries, labelled by a teacher chosen on judged queries.

    train split (qrels + BM25 top-20)  ─┐
    pseudo-queries from the collection ─┼─> one bi-encoder pass over every distinct text
    (tune candidates held out)          │     -> teacher weights chosen on the train split (never the tune split)
                                        └─>  -> targets: scale * znorm(teacher) (+ label_weight * label, judged only)

The teacher's own quality on the tune split is measured (and printed) before training starts, so a
run that cannot beat its teacher is visible as such.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from crossrank.data.candidates import Candidates
from crossrank.training.corpus_examples import PseudoDataConfig
from crossrank.training.teachers import TeacherConfig

logger = logging.getLogger(__name__)


@dataclass
class TrainingData:
    """What `build_training_data` wrote, and what chose it."""

    examples_path: Path
    judged: int  # judged training queries (lists)
    pseudo: int  # pseudo-query lists (every corpus)
    skipped: str  # the pseudo-query skip summary (every corpus)
    teacher: str  # the teacher, in words
    teacher_reason: str  # why these teacher weights (chosen on the train split)
    teacher_tune: dict[str, float]  # the teacher's own quality on the tune split (and BM25's beside it)


def build_training_data(sources: dict[str, str], output: Path, dense, *, pseudo_queries: int, strategy: str = "sentence",
                        num_negatives: int = 15, scale: float = 2.0, label_weight: float = 3.0, seed: int = 12,
                        metric: str = "RR@10", other_corpora: Sequence[PseudoDataConfig] = (),
                        other_teacher: TeacherConfig | None = None) -> TrainingData:
    """Training lists for the dev600 train split plus `pseudo_queries` pseudo-queries (0: none) from its
    collection and the pseudo-queries of `other_corpora` (a user's own corpus: domain adaptation), labelled
    by a bi-encoder/BM25 teacher whose weights are chosen on the train split; written to `output` (JSONL).
    `other_teacher` labels the pseudo-queries of `other_corpora` instead (its `scale` and `label_weight`
    are those of the rest): a corpus whose best teacher differs from MS MARCO's (the quickstart's SciFact)."""
    from crossrank.data import load_qrels
    from crossrank.evaluation import evaluate
    from crossrank.training.config import DataConfig
    from crossrank.training.corpus_examples import labelled_lists, pseudo_lists, to_examples
    from crossrank.training.example_files import write_examples
    from crossrank.training.teachers import EnsembleTeacher, choose_teacher

    judged, labels = labelled_lists(DataConfig(format="lists", num_negatives=num_negatives, depth=20, **sources), seed)
    tune, _ = labelled_lists(DataConfig(format="lists", num_negatives=19, depth=20, split_name="tune", **sources), seed)
    pseudo, summaries, own = [], [], 0  # own: pseudo-query lists from the dev600 collection (first in `pseudo`)
    corpora = ([PseudoDataConfig(sources["corpus"], strategy, pseudo_queries, num_negatives, sources["run"], sources["split"], "tune", seed)]
               if pseudo_queries else []) + list(other_corpora)
    for i, corpus_cfg in enumerate(corpora):
        lists, counts = pseudo_lists(corpus_cfg, show_progress=False)
        prefix = f"{Path(corpus_cfg.corpus).parent.name}/"  # query ids stay distinct across corpora
        pseudo += [Candidates(prefix + c.query_id, c.query, c.doc_ids, c.texts, c.first_stage) for c in lists]
        summaries.append(f"{Path(corpus_cfg.corpus).parent.name}: {counts.summary()}")
        own = len(pseudo) if i == 0 and pseudo_queries else own
    skipped = "; ".join(summaries) or "no pseudo-queries"
    everything = judged + tune + pseudo
    vectors = dense.encode_lists([c.query for c in everything], [c.texts for c in everything], show_progress=True)
    v_judged, v_tune, v_pseudo = vectors[: len(judged)], vectors[len(judged): len(judged) + len(tune)], vectors[len(judged) + len(tune):]
    qrels = load_qrels(sources["qrels"])
    config, choice = choose_teacher(judged, qrels, v_judged, metric=metric,
                                    base=TeacherConfig(scale=scale, label_weight=label_weight))
    teacher = EnsembleTeacher(config, dense=dense)
    tune_scores = teacher.scores(tune, vectors=v_tune)
    tune_run = {c.query_id: dict(zip(c.doc_ids, map(float, s))) for c, s in zip(tune, tune_scores)}
    bm25_run = {c.query_id: dict(zip(c.doc_ids, c.first_stage)) for c in tune}
    tune_qrels = {q: qrels[q] for q in tune_run if q in qrels}  # RR counts every qrels query: keep the tune split's
    tune_quality = {name: evaluate(tune_qrels, run, metrics=[metric])[metric] for name, run in (("teacher", tune_run), ("BM25", bm25_run))}
    examples = to_examples(judged, teacher.targets(judged, labels, vectors=v_judged))
    # a pseudo-query's source passage is a guess, not a judgement: the teacher alone sets its targets
    unlabelled = EnsembleTeacher(TeacherConfig(**{**config.__dict__, "label_weight": 0.0}), dense=dense)
    other = unlabelled if other_teacher is None else EnsembleTeacher(
        TeacherConfig(**{**other_teacher.__dict__, "scale": config.scale, "label_weight": 0.0}), dense=dense)
    for teacher, lists, vecs in ((unlabelled, pseudo[:own], v_pseudo[:own]), (other, pseudo[own:], v_pseudo[own:])):
        if lists:
            examples += to_examples(lists, teacher.targets(lists, vectors=vecs))
    write_examples(output, examples)
    reason = choice.reason.replace("held-out queries", "judged train-split queries")  # chosen on training queries, not held out
    described = config.describe() + (f"; other corpora: {other.config.describe()}" if other_teacher is not None and len(pseudo) > own else "")
    return TrainingData(output, len(judged), len(pseudo), skipped, described, reason, tune_quality)

"""Training data from a corpus alone: pseudo-queries, BM25 candidates, teacher targets.

    passages -> pseudo-queries (`pseudo_queries`) -> BM25 over the corpus -> lists of the source
    passage + its top BM25 neighbours -> an ensemble teacher's targets (`teachers`) -> examples

Domain adaptation for users who have passages and no judged queries (what GPL and InPars do with a
generator model, here without one). The BM25 index holds each passage as the model will see it:
for the inverse-cloze shape, the source passage without its query sentence, so the lexical score
of the positive is the one its training text earns. Passages named in `exclude` (for example the
candidates of held-out tuning queries) are neither queries nor candidates.

Labelled queries (qrels + a first-stage run) go through the same teacher (`labelled_lists`), with
their judgements added as `label_weight * label`.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from crossrank.data.corpus import join_title
from crossrank.data.records import Passage, Query
from crossrank.data.candidates import Candidates
from crossrank.training.examples import TrainingExample
from crossrank.training.pseudo_queries import STRATEGIES, SkipCounts, make_pseudo_queries

logger = logging.getLogger(__name__)


@dataclass
class PseudoDataConfig:
    """Where pseudo-queries come from and how their candidate lists are shaped."""

    corpus: str
    strategy: str = "sentence"  # or "terms" (see crossrank.training.pseudo_queries)
    num_queries: int | None = None  # at most this many (None: one per usable passage)
    num_candidates: int = 15  # BM25 neighbours per query, beside the source passage
    exclude_run: str | None = None  # passages of this run's queries are held out ...
    exclude_split: str | None = None  # ... restricted to the queries of this split file ...
    exclude_split_name: str = "tune"  # ... and split name
    seed: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"pseudo-query strategy must be one of {', '.join(STRATEGIES)}, but got {self.strategy!r}")
        if self.num_queries is not None and self.num_queries < 1:
            raise ValueError(f"num_queries must be >= 1, but got {self.num_queries}")
        if self.num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, but got {self.num_candidates}")
        from crossrank.data.ranges import Range, check_ranges

        check_ranges("pseudo-query data", self, {"num_queries": Range(1, integer=True, optional=True),
                                                 "num_candidates": Range(1, integer=True), "seed": Range(0, integer=True)})
        if self.exclude_split and not self.exclude_run:
            raise ValueError("exclude_split needs exclude_run (the run whose candidates are held out)")


def held_out_passages(run_path: str | None, split_path: str | None = None, split_name: str = "tune") -> set[str]:
    """Doc ids of a run's candidates (only the queries of one split where a split file is given)."""
    if not run_path:
        return set()
    from crossrank.data import load_run
    from crossrank.training.datasets import load_split

    run = load_run(run_path)
    keep = load_split(split_path, split_name) if split_path else set(run)
    return {d for q, docs in run.items() if q in keep for d in docs}


def pseudo_lists(cfg: PseudoDataConfig, passages: Sequence[Passage] | None = None,
                 show_progress: bool = True) -> tuple[list[Candidates], SkipCounts]:
    """Pseudo-queries with their candidate lists (source passage first, then BM25 neighbours best first)."""
    from crossrank.data import iter_corpus
    from crossrank.retrieval import BM25Index

    if passages is None:
        passages = list(iter_corpus(cfg.corpus))
    excluded = held_out_passages(cfg.exclude_run, cfg.exclude_split, cfg.exclude_split_name)
    queries, counts = make_pseudo_queries(passages, cfg.strategy, limit=cfg.num_queries, seed=cfg.seed, exclude=excluded)
    if not queries:
        raise ValueError(f"{cfg.corpus}: no passage gave a pseudo-query ({counts.summary()})")
    positive = {q.doc_id: q.positive for q in queries}
    seen: set[str] = set()
    indexed: list[Passage] = []
    for p in passages:  # the corpus as the model sees it; held-out passages and repeated ids out
        if p.doc_id in excluded or p.doc_id in seen:
            continue
        seen.add(p.doc_id)
        indexed.append(Passage(p.doc_id, positive.get(p.doc_id, p.text), p.title))
    texts = {p.doc_id: join_title(p.title, p.text) for p in indexed}  # as the model will score it (the BEIR convention)
    index = BM25Index.build(indexed, show_progress=show_progress)
    run = index.search([Query(q.query_id, q.text) for q in queries], k=cfg.num_candidates + 1, show_progress=show_progress)
    lists: list[Candidates] = []
    for q in queries:
        docs = [q.doc_id] + [d for d in run[q.query_id] if d != q.doc_id][: cfg.num_candidates]
        if len(docs) < 2:
            counts.skipped["no BM25 neighbour"] += 1
            counts.made -= 1
            continue
        scores = index.score_docs(q.text, docs)
        lists.append(Candidates(q.query_id, q.text, docs, [texts[d] for d in docs], [float(s) for s in scores]))
    logger.info("%s", counts.summary())
    return lists, counts


def labelled_lists(data_cfg, seed: int = 0) -> tuple[list[Candidates], list[list[float]]]:
    """A labelled set (a DataConfig in the lists format: qrels + run + corpus + queries) as candidate
    lists with first-stage scores, and each list's labels."""
    from crossrank.data import load_run
    from crossrank.training.datasets import examples_from_run

    if data_cfg.format != "lists":
        raise ValueError(f"labelled_lists expects data.format 'lists', but got {data_cfg.format!r}")
    run = load_run(data_cfg.run)
    lists, labels = [], []
    for e in examples_from_run(data_cfg, seed):
        # a judged positive the run did not retrieve gets the lowest score of its list
        scores = [run[e.query_id].get(d) for d in e.doc_ids]
        low = min((s for s in scores if s is not None), default=0.0)
        lists.append(Candidates(e.query_id, e.query, list(e.doc_ids), list(e.passages), [low if s is None else s for s in scores]))
        labels.append(list(e.targets))
    return lists, labels


def to_examples(lists: Iterable[Candidates], targets: Iterable[Sequence[float]]) -> list[TrainingExample]:
    return [TrainingExample(c.query, list(c.texts), list(t), c.query_id, list(c.doc_ids)) for c, t in zip(lists, targets)]


@dataclass
class PseudoLabelResult:
    output: str
    examples: int
    counts: SkipCounts
    teacher: str


def write_pseudo_examples(data: PseudoDataConfig, teacher, output: str, *, show_progress: bool = True) -> PseudoLabelResult:
    """Pseudo-queries from `data.corpus`, labelled by `teacher` (a TeacherConfig or EnsembleTeacher),
    written atomically to `output` as training JSONL (`crossrank train --set data.examples=FILE`)."""
    from crossrank.training.example_files import write_examples
    from crossrank.training.teachers import EnsembleTeacher, TeacherConfig

    if isinstance(teacher, TeacherConfig):
        teacher = EnsembleTeacher(teacher)
    lists, counts = pseudo_lists(data, show_progress=show_progress)
    targets = teacher.targets(lists, show_progress=show_progress)
    n = write_examples(output, to_examples(lists, targets))
    return PseudoLabelResult(str(output), n, counts, teacher.config.describe())

"""Small BEIR-layout reranking sets, NanoBEIR-style: BM25 candidates for a seeded query sample.

A folder holds `corpus.jsonl`, `queries.jsonl` and `qrels/<split>.tsv`. BM25 runs over the whole
corpus (title + text); a reproducible sample of the judged queries keeps its BM25 top-`depth` as
candidates. One `RerankingEvaluator` per folder, named after the folder, and their mean per metric
(`MultiDatasetEvaluator`) give the NanoBEIR-style figure, e.g. the mean nDCG@10 over the sets.
"""
from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from crossrank.data.fields import is_int_at_least
from crossrank.training.evaluator import MultiDatasetEvaluator, RerankingEvaluator

if TYPE_CHECKING:
    from crossrank.data.candidates import Candidates

NANOBEIR_QUERIES = 50  # queries per set in NanoBEIR


class BeirSet(NamedTuple):
    """One folder's sampled queries with their BM25 candidates and their judgments."""

    name: str
    candidates: list[Candidates]
    qrels: dict[str, dict[str, int]]


@dataclass
class BeirSetConfig:
    """Which BEIR-layout folders to evaluate on, and how their candidate lists are made."""

    folders: list[str] = field(default_factory=list)
    split: str = "test"  # qrels/<split>.tsv
    queries_per_set: int = NANOBEIR_QUERIES  # sampled judged queries per folder (all when fewer)
    depth: int = 100  # BM25 candidates per query
    seed: int = 0  # of the query sample
    relevance_level: int = 1  # lowest grade that counts as relevant

    def __post_init__(self) -> None:
        if isinstance(self.folders, (str, Path)) or not isinstance(self.folders, Sequence):
            raise ValueError(f"beir `folders` expects a list of folder paths, but got {type(self.folders).__name__}")
        if not self.folders:
            raise ValueError("beir `folders` expects at least one BEIR-layout folder, but got an empty list")
        self.folders = [str(f) for f in self.folders]
        check_settings(self.split, self.queries_per_set, self.depth, self.seed, self.relevance_level)
        names = [set_name(f) for f in self.folders]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"beir `folders` expects folders with distinct names (they name the sets), but got {repeated[0]!r} twice")
        for folder in self.folders:
            check_folder(folder, self.split)

    @property
    def names(self) -> list[str]:
        """The set names: each folder's own name."""
        return [set_name(f) for f in self.folders]


def set_name(folder: str | Path) -> str:
    """A set's name in metric keys (`name/nDCG@10`): the folder's name."""
    return Path(folder).resolve().name


def check_settings(split: str, queries_per_set: int, depth: int, seed: int, relevance_level: int) -> None:
    """ValueError naming the first setting of a BEIR set that cannot work."""
    if not isinstance(split, str) or not split or "/" in split:
        raise ValueError(f"beir `split` expects a qrels file name without .tsv (e.g. 'test'), but got {split!r}")
    for name, value, low in (("queries_per_set", queries_per_set, 1), ("depth", depth, 1),
                             ("seed", seed, None), ("relevance_level", relevance_level, None)):
        if not is_int_at_least(value, low):
            wanted = f"an integer >= {low}" if low is not None else "an integer"
            raise ValueError(f"beir `{name}` expects {wanted}, but got {value!r}")


def required_files(folder: str | Path, split: str) -> list[Path]:
    folder = Path(folder)
    return [folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels" / f"{split}.tsv"]


def check_folder(folder: str | Path, split: str) -> None:
    """ValueError naming the first file of the BEIR layout that `folder` lacks."""
    if not Path(folder).is_dir():
        raise ValueError(f"beir folder expects a directory with corpus.jsonl, queries.jsonl and qrels/{split}.tsv, "
                         f"but got {str(folder)!r}, which is not a directory")
    for path in required_files(folder, split):
        if not path.is_file():
            raise ValueError(f"beir folder {str(folder)!r} expects {path.relative_to(folder)}, but {path} does not exist")


def sample_queries(judged: Sequence[str], queries_per_set: int, seed: int) -> list[str]:
    """A reproducible sample: the ids sorted, then `random.Random(seed).sample`, returned sorted."""
    ids = sorted(set(judged))
    if len(ids) <= queries_per_set:
        return ids
    return sorted(random.Random(seed).sample(ids, queries_per_set))


def beir_candidates(folder: str | Path, *, split: str = "test", queries_per_set: int = NANOBEIR_QUERIES, depth: int = 100,
                    seed: int = 0, relevance_level: int = 1) -> BeirSet:
    """A folder's sampled judged queries, each with its BM25 top-`depth` over the whole corpus.

    Judged queries are those of `queries.jsonl` with at least one judgment >= `relevance_level` in
    `qrels/<split>.tsv`. A query matching no passage gets an empty candidate list.
    """
    from crossrank.data import iter_corpus, join_title, load_qrels, load_queries
    from crossrank.data.records import Query
    from crossrank.data.candidates import Candidates
    from crossrank.retrieval import BM25Index

    check_settings(split, queries_per_set, depth, seed, relevance_level)
    check_folder(folder, split)
    corpus, queries_path, qrels_path = required_files(folder, split)
    queries = load_queries(queries_path)
    all_qrels = load_qrels(qrels_path)
    judged = [q for q, rels in all_qrels.items() if q in queries and any(r >= relevance_level for r in rels.values())]
    if not judged:
        raise ValueError(f"{qrels_path}: no query of {queries_path} has a judgment >= {relevance_level}")
    sample = sample_queries(judged, queries_per_set, seed)
    passages = list(iter_corpus(corpus))
    texts = {p.doc_id: join_title(p.title, p.text) for p in passages}
    run = BM25Index.build(passages, show_progress=False).search([Query(q, queries[q]) for q in sample], k=depth,
                                                                 show_progress=False)
    candidates = [
        Candidates(q, queries[q], list(run[q]), [texts[d] for d in run[q]], list(run[q].values())) for q in sample
    ]
    return BeirSet(set_name(folder), candidates, {q: dict(all_qrels[q]) for q in sample})


def reranking_evaluator(beir_set: BeirSet, metrics: Sequence[str] = ("nDCG@10",), relevance_level: int = 1) -> RerankingEvaluator:
    """A `RerankingEvaluator` over one set's candidates, in their BM25 order."""
    texts = {d: t for c in beir_set.candidates for d, t in zip(c.doc_ids, c.texts)}
    return RerankingEvaluator(
        beir_set.name,
        {c.query_id: c.query for c in beir_set.candidates},
        {c.query_id: list(c.doc_ids) for c in beir_set.candidates},
        texts,
        beir_set.qrels,
        metrics=list(metrics),
        relevance_level=relevance_level,
    )


def beir_evaluators(cfg: BeirSetConfig, metrics: Sequence[str] = ("nDCG@10",)) -> MultiDatasetEvaluator:
    """One `RerankingEvaluator` per folder of `cfg`; the result reports `name/metric` and the mean per metric."""
    from crossrank.evaluation import parse_metrics

    parse_metrics(list(metrics), cfg.relevance_level)  # an unknown metric fails before BM25 runs
    evaluators = []
    for folder in cfg.folders:
        beir_set = beir_candidates(folder, split=cfg.split, queries_per_set=cfg.queries_per_set, depth=cfg.depth,
                                   seed=cfg.seed, relevance_level=cfg.relevance_level)
        evaluators.append(reranking_evaluator(beir_set, metrics, cfg.relevance_level))
    return MultiDatasetEvaluator(evaluators)


def nano_mean(per_set_metrics: Mapping[str, Mapping[str, float]], metric: str = "nDCG@10") -> float:
    """The NanoBEIR-style figure: the unweighted mean of `metric` over the sets.

    `per_set_metrics` is `{set name: {metric: value}}`, e.g. `{name: evaluator.measure(run)}` for
    runs from any reranker. Each set counts once, whatever its number of queries.
    """
    if not per_set_metrics:
        raise ValueError("nano_mean expects the metrics of at least one set, but got none")
    missing = [name for name, values in per_set_metrics.items() if metric not in values]
    if missing:
        raise ValueError(f"nano_mean expects {metric!r} for every set, but set {missing[0]!r} lacks it")
    return sum(float(values[metric]) for values in per_set_metrics.values()) / len(per_set_metrics)

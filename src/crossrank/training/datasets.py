"""Building training examples from qrels + a first-stage run, or from triples."""
from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from crossrank.training.config import DataConfig
from crossrank.training.examples import TrainingExample


def load_split(path: str | Path, name: str) -> set[str]:
    """Query ids of one split from a `qid \\t split` file (a header line `qid split` is allowed)."""
    path = Path(path)
    keep: set[str] = set()
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or (lineno == 1 and line.split("\t")[0] == "qid"):
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise ValueError(f"{path}:{lineno}: expected 2 tab-separated fields (qid, split), got {len(parts)}")
            if parts[1] == name:
                keep.add(parts[0])
    if not keep:
        raise ValueError(f"{path}: no query is in split {name!r}")
    return keep


def ranked_candidates(run: dict[str, dict[str, float]], qid: str, depth: int) -> list[str]:
    """A query's candidates best first (score desc, then doc id, for a deterministic order)."""
    docs = run.get(qid, {})
    return [d for d, _ in sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))][:depth]


def choose_negatives(pool: list[str], n: int, sampling: str, rng: random.Random) -> list[str]:
    if sampling == "top":
        return pool[:n]
    if sampling == "random":
        return rng.sample(pool, min(n, len(pool)))
    raise ValueError(f"negative sampling must be 'top' or 'random', but got {sampling!r}")


#: above this share of a run's candidates missing from the corpus, the run and the corpus do not belong together
MAX_MISSING_SHARE = 0.05


@dataclass
class SourceReport:
    """What building training examples from a run dropped, for the data check."""

    candidates: int = 0  # run candidates of the training queries (within depth)
    missing_text: int = 0  # of those, not in the corpus (dropped)
    missing_example: str | None = None
    queries_without_text: int = 0  # training queries skipped: no judged-relevant passage with text

    def rows(self) -> list[tuple[str, str]]:
        share = f"{self.missing_text / self.candidates:.1%}" if self.candidates else "n/a"
        example = f", e.g. {self.missing_example!r}" if self.missing_example else ""
        return [("run candidates not in the corpus", f"{self.missing_text:,} of {self.candidates:,} ({share}) dropped{example}"),
                ("queries whose relevant passages have no text", f"{self.queries_without_text:,} skipped")]


def examples_from_run(cfg: DataConfig, seed: int = 0, report: SourceReport | None = None) -> list[TrainingExample]:
    """Positives from the qrels, negatives from the run's candidates (never a judged positive).
    What is dropped goes into `report`; a run whose candidates are mostly missing from the corpus
    (more than `MAX_MISSING_SHARE`) is an error naming both files."""
    from crossrank.data import Collection, load_qrels, load_queries, load_run

    for name in ("queries", "corpus", "qrels", "run"):
        if not getattr(cfg, name):
            raise ValueError(f"training data from a run needs `data.{name}`")
    queries = load_queries(cfg.queries)
    qrels = load_qrels(cfg.qrels)
    run = load_run(cfg.run)
    texts = Collection.open(cfg.corpus)
    keep = load_split(cfg.split, cfg.split_name) if cfg.split else None
    rng = random.Random(seed)
    report = report if report is not None else SourceReport()
    examples: list[TrainingExample] = []
    for qid in sorted(run):
        if (keep is not None and qid not in keep) or qid not in qrels or qid not in queries:
            continue
        judged = qrels[qid]
        ranked = ranked_candidates(run, qid, cfg.depth)
        missing = [d for d in ranked if d not in texts]
        report.candidates += len(ranked)
        report.missing_text += len(missing)
        report.missing_example = report.missing_example or (missing[0] if missing else None)
        positives = [d for d, rel in sorted(judged.items()) if rel > 0 and d in texts]
        if not positives:
            report.queries_without_text += 1
            continue  # the relevant passage has no text here: nothing to learn from
        pool = [d for d in ranked if judged.get(d, 0) <= 0 and d in texts]
        examples.extend(_shape(cfg, _JudgedQuery(qid, queries[qid], positives, pool, judged), texts, rng))
    if report.candidates and report.missing_text / report.candidates > MAX_MISSING_SHARE:
        raise ValueError(f"{cfg.run}: {report.missing_text:,} of {report.candidates:,} candidates of the training queries "
                         f"({report.missing_text / report.candidates:.1%}) are not in {cfg.corpus} (e.g. {report.missing_example!r}): "
                         "the run and the corpus do not belong together")
    if not examples:
        raise ValueError(f"no training examples: no query of {cfg.run} has a judged positive with text")
    return examples


@dataclass(frozen=True)
class _JudgedQuery:
    """One training query of a run: its judged positives and the pool its negatives are drawn from."""

    qid: str
    query: str
    positives: list[str]  # judged relevant, with text
    pool: list[str]  # the run's candidates, best first, never a judged positive
    judged: Mapping[str, int]  # the query's qrels (grades)


def _shape(cfg: DataConfig, item: _JudgedQuery, texts, rng: random.Random) -> Iterable[TrainingExample]:
    qid, query, positives, pool = item.qid, item.query, item.positives, item.pool
    if cfg.format == "pairs":
        for pos in positives:
            yield TrainingExample(query, [texts[pos]], [1.0], qid, [pos])
        for neg in choose_negatives(pool, cfg.negatives_ratio * len(positives), cfg.sampling, rng):
            yield TrainingExample(query, [texts[neg]], [0.0], qid, [neg])
    elif cfg.format in ("tuples", "groups"):
        n = cfg.num_negatives if cfg.format == "tuples" else cfg.group_size - 1
        negs = choose_negatives(pool, n, cfg.sampling, rng)
        if len(negs) < n and cfg.format == "groups":
            negs = negs + [rng.choice(pool) for _ in range(n - len(negs))] if pool else negs
        for pos in positives:
            docs = [pos] + negs
            yield TrainingExample(query, [texts[d] for d in docs], [1.0] + [0.0] * len(negs), qid, docs)
    else:  # lists: every positive with its grade, plus negatives, in a shuffled order
        docs = positives + choose_negatives(pool, cfg.num_negatives, cfg.sampling, rng)
        rng.shuffle(docs)
        yield TrainingExample(query, [texts[d] for d in docs], [float(max(item.judged.get(d, 0), 0)) for d in docs], qid, docs)


def examples_from_triples(cfg: DataConfig) -> list[TrainingExample]:
    """(query, positive, negative) rows: a tuple each, or two pairs for the pointwise format."""
    from crossrank.data import iter_triples

    examples = []
    for t in iter_triples(cfg.triples):
        if cfg.format == "pairs":
            examples.append(TrainingExample(t.query, [t.positive], [1.0]))
            examples.append(TrainingExample(t.query, [t.negative], [0.0]))
        else:
            examples.append(TrainingExample(t.query, [t.positive, t.negative], [1.0, 0.0]))
    if not examples:
        raise ValueError(f"{cfg.triples}: no triples")
    return examples


def build_examples(cfg: DataConfig, seed: int = 0, report: SourceReport | None = None) -> list[TrainingExample]:
    """Examples from every source the config names: prepared JSONL, a run with qrels, triples
    (what the run source drops goes into `report`)."""
    examples: list[TrainingExample] = []
    if cfg.examples:
        from crossrank.training.example_files import iter_examples

        examples += list(iter_examples(cfg.examples))
    if cfg.run:
        examples += examples_from_run(cfg, seed, report)
    if cfg.triples:
        examples += examples_from_triples(cfg)
    if not (cfg.examples or cfg.run or cfg.triples):
        raise ValueError("training data needs `data.examples`, `data.run` (with qrels, queries, corpus) or `data.triples`")
    return examples


def build_evaluator(cfg, name: str = "eval"):
    """A RerankingEvaluator over the held-out split of an EvalConfig.

    With `cfg.beir`: a MultiDatasetEvaluator of the held-out set (named `tune`, when configured)
    and one set per BEIR folder, measured with `cfg.metrics`."""
    if getattr(cfg, "beir", None) is None:
        return _tune_evaluator(cfg, name)
    from crossrank.training.beir_sets import beir_evaluators
    from crossrank.training.config import TUNE_SET
    from crossrank.training.evaluator import MultiDatasetEvaluator

    cfg.validate()
    tune = [_tune_evaluator(cfg, TUNE_SET)] if cfg.has_tune_set else []
    return MultiDatasetEvaluator(tune + list(beir_evaluators(cfg.beir, metrics=cfg.metrics).evaluators))


def _tune_evaluator(cfg, name: str):
    from crossrank.data import Collection, load_qrels, load_queries, load_run
    from crossrank.training.evaluator import RerankingEvaluator

    for field_name in ("queries", "corpus", "qrels", "run"):
        if not getattr(cfg, field_name):
            raise ValueError(f"evaluation needs `eval.{field_name}`")
    run = load_run(cfg.run)
    keep = load_split(cfg.split, cfg.split_name) if cfg.split else set(run)
    candidates = {q: ranked_candidates(run, q, cfg.depth) for q in sorted(run) if q in keep}
    texts = Collection.open(cfg.corpus)
    qrels = load_qrels(cfg.qrels)
    return RerankingEvaluator(name, load_queries(cfg.queries), candidates, texts, qrels, metrics=list(cfg.metrics))

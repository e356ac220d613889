"""Hard negatives from files to a training JSONL: what `crossrank mine` runs.

    from crossrank.training.mine_job import MineJobConfig, mine_to_file
    from crossrank.training.mining import MiningConfig

    result = mine_to_file(MineJobConfig("queries.tsv", "collection.tsv", "qrels.trec", "train.jsonl",
                                        run="run.trec", split="split.tsv", mining=MiningConfig(num_negatives=7)))
    print(result.summary())

Candidates come from a run file (`run`) or, without one, from a dense bi-encoder over the whole
corpus (`crossrank.training.dense.dense_candidates`, only for the queries that can be mined: in
the split, with a judged positive). With `split`, only that split's queries are mined. The
examples are chosen by `crossrank.training.mining.mine` and written atomically.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from crossrank.training.mining import MiningConfig, MiningStats

DEFAULT_DENSE_MODEL = "all-MiniLM-L6-v2"  # what dense_candidates loads when no model is named


@dataclass
class MineJobConfig:
    """The files of a mining job and how candidates are found; `mining` says how negatives are chosen."""

    queries: Path
    corpus: Path
    qrels: Path
    output: Path  # training examples to write (JSONL)
    run: Path | None = None  # first-stage run; None: a dense bi-encoder retrieves the candidates
    dense_model: Path | None = None  # sentence-transformers folder (None: all-MiniLM-L6-v2)
    dense_batch_size: int = 64
    dense_max_length: int | None = None  # None: the model's max_seq_length
    split: Path | None = None  # qid<TAB>split file: keep one split's queries ...
    split_name: str = "train"  # ... this one
    mining: MiningConfig = field(default_factory=MiningConfig)
    show_progress: bool = True

    def __post_init__(self) -> None:
        self.queries, self.corpus, self.qrels, self.output = map(Path, (self.queries, self.corpus, self.qrels, self.output))
        self.run, self.dense_model, self.split = (None if p is None else Path(p) for p in (self.run, self.dense_model, self.split))
        if self.dense_batch_size < 1:
            raise ValueError(f"--dense-batch-size must be >= 1, got {self.dense_batch_size}")
        from crossrank.data.ranges import Range, check_ranges

        check_ranges("mine", self, {"dense_batch_size": Range(1, integer=True), "dense_max_length": Range(1, integer=True, optional=True)})
        if self.run is None and self.mining.range_max is None:
            raise ValueError("dense candidates need mining.range_max (how many to retrieve per query), but got None")

    @property
    def source(self) -> str:
        """Where the candidates come from, in words."""
        return f"run {self.run}" if self.run is not None else f"dense {self.dense_model or DEFAULT_DENSE_MODEL}"

    def check_files(self) -> None:
        """The inputs exist and the output can be a file: raised before anything is read."""
        for path, what in ((self.queries, "queries"), (self.corpus, "corpus"), (self.qrels, "qrels"),
                           (self.run, "run"), (self.split, "split")):
            if path is not None and not path.is_file():
                raise FileNotFoundError(f"{what} file not found: {path}")
        rescore = self.mining.rescore_model
        if rescore is not None and not Path(rescore).is_dir():
            raise FileNotFoundError(f"--rescore-model: no such model folder: {rescore}")
        if self.output.is_dir():
            raise ValueError(f"--output {self.output} is a directory; give a file name")


@dataclass
class MineJobResult:
    """What `mine_to_file` wrote and how mining went."""

    output: Path
    source: str  # the candidates' origin, in words
    format: str  # pairs, tuples or lists
    examples: int  # examples written
    stats: MiningStats
    seconds: float

    def summary(self) -> str:
        return (f"mined {self.format} from {self.source} -> {self.output} in {self.seconds:.1f}s\n"
                + self.stats.summary())


def mine_to_file(config: MineJobConfig) -> MineJobResult:
    """Mine `config`'s training examples and write them to `config.output` (see the module docstring)."""
    from crossrank.data import Collection, load_qrels, load_queries, load_run
    from crossrank.training.datasets import load_split
    from crossrank.training.example_files import write_examples
    from crossrank.training.mining import mine

    config.mining.validate()
    config.check_files()
    started = time.perf_counter()
    # the small inputs first, so that a malformed line fails before the corpus is read
    queries = load_queries(config.queries)
    qrels = load_qrels(config.qrels)
    run_scores = load_run(config.run) if config.run is not None else None
    keep = load_split(config.split, config.split_name) if config.split is not None else None
    collection = Collection.open(config.corpus)

    candidates = run_scores if run_scores is not None else _dense(config, queries, qrels, collection, keep)
    if keep is not None:
        candidates = {q: docs for q, docs in candidates.items() if q in keep}
    if not candidates:
        raise ValueError("no query has candidates" + (f" in split {config.split_name!r}" if keep is not None else ""))

    result = mine(queries, qrels, collection, candidates, config.mining, show_progress=config.show_progress)
    if not result.examples:
        raise ValueError("no training examples mined (no query kept a positive with text and enough negatives):\n"
                         + result.stats.summary())
    config.output.parent.mkdir(parents=True, exist_ok=True)
    written = write_examples(config.output, result.examples)
    return MineJobResult(config.output, config.source, config.mining.format, written, result.stats,
                         time.perf_counter() - started)


def _dense(config: MineJobConfig, queries, qrels, collection, keep) -> dict[str, dict[str, float]]:
    """Dense candidates of the queries that can be mined (in the split, with a judged positive)."""
    from crossrank.training.dense import dense_candidates

    wanted = {q: text for q, text in queries.items()
              if (keep is None or q in keep) and any(rel > 0 for rel in qrels.get(q, {}).values())}
    return dense_candidates(wanted, collection, k=config.mining.range_max, qrels=qrels, model=config.dense_model,
                            max_length=config.dense_max_length, batch_size=config.dense_batch_size,
                            show_progress=config.show_progress)

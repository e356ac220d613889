"""Training configuration: one dataclass per concern, filled from a YAML file and/or flags."""
from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossrank.data.ranges import Range, check_ranges, read_yaml_numbers
from crossrank.training.beir_sets import BeirSetConfig

TEACHER_KINDS = ("cross-encoder", "bi-encoder")  # what `data.teacher` names: logits, or the cosine of two embeddings
Overrides = Mapping[str, Any] | Iterable[tuple[str, Any]]  # dotted key -> value, e.g. {"data.format": "pairs"}


@dataclass
class DataConfig:
    """Where training examples come from and how they are shaped.

    `format`: pairs (query, passage, label), tuples (query, positive, negatives...),
    lists (query, [passages], [labels]) or groups (Tevatron: positive + group_size-1 negatives).
    Sources: qrels + run + corpus + queries (candidates as negatives), or triples.
    """

    format: str = "lists"
    queries: str | None = None
    corpus: str | None = None
    qrels: str | None = None
    run: str | None = None
    triples: str | None = None
    examples: str | None = None  # a JSONL of prepared examples (e.g. from `crossrank mine`)
    split: str | None = None  # a split.tsv (qid \t name) ...
    split_name: str = "train"  # ... and the name of the split to keep
    num_negatives: int = 7  # tuples/lists/groups: negatives per query
    negatives_ratio: int = 4  # pairs: negatives per positive
    group_size: int = 8  # groups: 1 positive + group_size-1 negatives
    depth: int = 100  # candidates read from the run per query
    sampling: str = "top"  # negatives: "top" of the run or "random" among candidates
    teacher: str | None = None  # a model whose scores become the targets (distillation); `minilm` allowed
    teacher_kind: str = "cross-encoder"  # or "bi-encoder": the cosine of query and passage embeddings
    teacher_scale: float = 1.0  # targets = teacher_scale * teacher score + label_weight * label
    label_weight: float = 0.0
    teacher_cache: str | None = None


@dataclass
class EvalConfig:
    """A held-out reranking set evaluated every `steps` training steps.

    `beir` adds small BEIR-layout sets (`BeirSetConfig`; a plain list of folders is allowed): the
    evaluation then reports each set as `name/metric` (the held-out set, when given, as `tune/...`)
    and the mean over the sets as `metric`, so `metric_for_best` may be `nDCG@10` or `scifact/nDCG@10`.
    """

    queries: str | None = None
    corpus: str | None = None
    qrels: str | None = None
    run: str | None = None
    split: str | None = None
    split_name: str = "tune"
    depth: int = 100
    metrics: list[str] = field(default_factory=lambda: ["RR@10", "nDCG@10", "AP"])
    steps: int = 100
    metric_for_best: str = "nDCG@10"
    beir: BeirSetConfig | None = None

    def __post_init__(self) -> None:
        if self.beir is not None and not isinstance(self.beir, BeirSetConfig):
            self.beir = beir_config(self.beir, "eval.beir")

    @property
    def has_tune_set(self) -> bool:
        """Whether the held-out set of queries/corpus/qrels/run is configured (any of them)."""
        return any((self.queries, self.corpus, self.qrels, self.run))

    def set_names(self) -> list[str]:
        """The names the evaluation reports sets under (`name/metric`); empty without `beir`."""
        if self.beir is None:
            return []
        return ([TUNE_SET] if self.has_tune_set else []) + self.beir.names

    def validate(self) -> None:
        """With `beir`: `metric_for_best` must name a reported key (`metric` or `set/metric`)."""
        if self.beir is None:
            return
        names = self.set_names()
        if TUNE_SET in self.beir.names and self.has_tune_set:
            raise ValueError(f"eval.beir expects no folder named {TUNE_SET!r} (the held-out set's name), but got one")
        set_part, _, metric = self.metric_for_best.rpartition("/")
        if metric not in self.metrics or (set_part and set_part not in names):
            keys = [*self.metrics, *(f"{n}/{m}" for n in names for m in self.metrics)]
            raise ValueError(f"eval.metric_for_best expects one of {', '.join(keys)}, but got {self.metric_for_best!r}")


TUNE_SET = "tune"  # the held-out set's name beside BEIR sets

# every numeric setting's range (`crossrank.data.ranges`), checked by TrainConfig.validate
_STEPS = Range(1, integer=True)
TRAIN_RANGES = {
    "batch_size": _STEPS, "gradient_accumulation": _STEPS, "max_length": _STEPS, "logging_steps": _STEPS, "save_steps": _STEPS,
    "learning_rate": Range(0, open_low=True), "head_learning_rate": Range(0, open_low=True, optional=True),
    "warmup_ratio": Range(0, 1), "weight_decay": Range(0), "epochs": Range(0, open_low=True),
    "max_steps": Range(1, integer=True, also=(-1,)), "seed": Range(0, integer=True), "save_total_limit": Range(1, integer=True, optional=True),
}
DATA_RANGES = {"num_negatives": _STEPS, "negatives_ratio": Range(0, integer=True), "group_size": Range(2, integer=True),
               "depth": _STEPS, "label_weight": Range(0)}
EVAL_RANGES = {"depth": _STEPS, "steps": _STEPS}


def beir_config(value: Any, source: str) -> BeirSetConfig:
    """`eval.beir` as a mapping of BeirSetConfig settings or a plain list of folders."""
    if isinstance(value, (list, tuple)):
        value = {"folders": list(value)}
    try:
        return _build(BeirSetConfig, value, source)
    except ValueError as exc:
        if str(exc).startswith(source):
            raise
        raise ValueError(f"{source}: {exc}") from exc


@dataclass
class TrainConfig:
    model: str = ""
    output_dir: str = "runs/train"
    loss: str = "lambda"
    loss_options: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig | None = None
    batch_size: int = 16
    gradient_accumulation: int = 1
    learning_rate: float = 2e-5
    head_learning_rate: float | None = None  # the scoring head's own rate (a new head learns little at 2e-5)
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    epochs: float = 1.0
    max_steps: int = -1
    max_length: int = 256
    seed: int = 12
    precision: str = "auto"  # auto (measured on this host), fp32, bf16, fp16
    attention: str = "auto"  # the training step's attention kernel: auto (sdpa and eager timed here, the faster kept), sdpa, eager
    stop_on_collapse: bool = False  # end the run on collapse or divergence, keeping the best checkpoint
    freeze_layers: int = 0  # > 0: the embeddings and this many lowest transformer layers stay fixed (a cheaper step)
    length_groups: bool = True  # score each batch in length-sorted sub-batches: same loss, less padding (one process only; off under DDP)
    logging_steps: int = 10
    save_steps: int = 500
    save_total_limit: int = 2
    activation: str | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "TrainConfig":
        values = dict(values)
        data = _build(DataConfig, values.pop("data", None) or {}, f"{source}: data")
        ev = values.pop("eval", None)
        evaluation = _build_eval(ev, f"{source}: eval") if ev else None
        config = _build(cls, values, source, data=data, eval=evaluation)
        read_yaml_numbers(config, TRAIN_RANGES)
        read_yaml_numbers(config.data, DATA_RANGES | {"teacher_scale": Range(0, open_low=True)})
        config.validate()
        return config

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: Overrides = ()) -> "TrainConfig":
        """One config from a YAML file (optional) with dotted-key `overrides` set on top, in order,
        built and validated once: what `crossrank train [--config FILE] [--FLAG ...] [--set KEY=VALUE]` runs."""
        if path is not None:
            return cls.from_yaml(path, overrides=overrides)
        return cls.from_dict(with_overrides({}, overrides), source="flags")

    @classmethod
    def from_yaml(cls, path: str | Path, *, overrides: Overrides = ()) -> "TrainConfig":
        import yaml

        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            raise ValueError(f"{where}: invalid YAML: {exc}") from exc
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of settings, but got {type(values).__name__}")
        return cls.from_dict(with_overrides(_expand_vars(values, path), overrides), source=str(path))

    def validate(self) -> None:
        if not self.model:
            raise ValueError("train config: `model` (a base model folder or hub id) is required")
        if isinstance(self.freeze_layers, bool) or not isinstance(self.freeze_layers, int) or self.freeze_layers < 0:
            raise ValueError(f"train config: `freeze_layers` must be an integer >= 0, but got {self.freeze_layers!r}")
        check_ranges("train config", self, TRAIN_RANGES)
        check_ranges("train config: data", self.data, DATA_RANGES)
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"train config: `precision` must be auto, fp32, bf16 or fp16, but got {self.precision!r}")
        if self.attention not in ("auto", "sdpa", "eager"):
            raise ValueError(f"train config: `attention` must be auto, sdpa or eager, but got {self.attention!r}")
        if self.data.format not in ("pairs", "tuples", "lists", "groups"):
            raise ValueError(f"train config: `data.format` must be pairs, tuples, lists or groups, but got {self.data.format!r}")
        if self.data.teacher_kind not in TEACHER_KINDS:
            raise ValueError(f"train config: `data.teacher_kind` must be {' or '.join(TEACHER_KINDS)}, but got {self.data.teacher_kind!r}")
        if not self.data.teacher_scale > 0:
            raise ValueError(f"train config: `data.teacher_scale` must be > 0, but got {self.data.teacher_scale!r}")
        if self.eval is not None:
            check_ranges("train config: eval", self.eval, EVAL_RANGES)
            self.eval.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def with_overrides(values: Mapping[str, Any], overrides: Overrides) -> dict[str, Any]:
    """A copy of the settings `values` with each dotted key of `overrides` set, in order:
    `("data.format", "pairs")` sets values["data"]["format"], making the mappings on the way."""
    values = copy.deepcopy(dict(values))
    for key, value in (overrides.items() if isinstance(overrides, Mapping) else overrides):
        node, parts = values, key.split(".")
        for depth, part in enumerate(parts[:-1]):
            if node.get(part) is None:
                node[part] = {}
            elif parts[: depth + 1] == ["eval", "beir"] and isinstance(node[part], (list, tuple)):
                node[part] = {"folders": list(node[part])}  # the plain list of folders, as a mapping
            if not isinstance(node[part], dict):
                raise ValueError(f"setting {key!r}: {'.'.join(parts[: depth + 1])} is {node[part]!r}, not a mapping")
            node = node[part]
        node[parts[-1]] = value
    return values


def _expand_vars(value, source):
    """`${CROSSRANK_DATA}`-style variables in YAML strings, so recipes name data wherever it lives."""
    if isinstance(value, dict):
        return {k: _expand_vars(v, source) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_vars(v, source) for v in value]
    if isinstance(value, str) and "$" in value:
        expanded = os.path.expandvars(value)
        if "$" in expanded:
            raise ValueError(f"{source}: {value!r} names an environment variable that is not set")
        return expanded
    return value


def _build_eval(values: Any, source: str) -> EvalConfig:
    if isinstance(values, dict) and values.get("beir") is not None:
        values = {**values, "beir": beir_config(values["beir"], f"{source}.beir")}
    return _build(EvalConfig, values, source)


def _build(cls, values: dict[str, Any], source: str, **fixed):
    if not isinstance(values, dict):
        raise ValueError(f"{source}: expected a mapping, but got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{source}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**values, **fixed)

"""Parsing metric names with ir_measures, plus crossrank's conventions on top.

* Names are ir_measures syntax (``nDCG@10``, ``AP``, ``R@100``, ``P(rel=2)@5``); ``MRR`` is
  accepted as an alias of ``RR`` (``MRR@10`` == ``RR@10``).
* ``relevance_level`` is applied as ``rel=`` to every measure that takes it (RR, AP, R, P, Success,
  Rprec, ...) unless the name sets ``rel`` itself; graded measures (nDCG) keep the graded qrels.
"""
from __future__ import annotations

from dataclasses import dataclass

import ir_measures
from ir_measures.measures.base import Measure

DEFAULT_METRICS = ("RR@10", "nDCG@10", "AP", "R@100")


@dataclass(frozen=True)
class ParsedMetric:
    name: str  # as given by the caller
    measure: Measure  # with rel= applied

    @property
    def is_reciprocal_rank(self) -> bool:
        return self.measure.NAME == "RR"


def _with_level(measure: Measure, relevance_level: int) -> Measure:
    if "rel" in measure.SUPPORTED_PARAMS and "rel" not in measure.params:
        return measure(rel=relevance_level)
    return measure


def _supported(measure: Measure) -> bool:
    return any(provider.supports(measure) for provider in ir_measures.DefaultPipeline.providers)


def parse_metric(name: str, relevance_level: int = 1) -> ParsedMetric:
    """Parse one metric name; ValueError naming it when unknown or unsupported."""
    text = name.strip()
    if text.startswith("MRR"):
        text = text[1:]
    try:
        measure = ir_measures.parse_measure(text)
    except Exception as exc:  # ir_measures raises NameError/ValueError/SyntaxError
        raise ValueError(f"unknown metric {name!r}: {exc}") from None
    measure = _with_level(measure, relevance_level)
    if measure.NAME == "RR" and measure.params.get("judged_only"):
        raise ValueError(f"metric {name!r}: RR with judged_only is not supported")
    if measure.NAME != "RR" and not _supported(measure):
        raise ValueError(f"metric {name!r} is not supported by any installed ir_measures provider")
    return ParsedMetric(name, measure)


def parse_metrics(names, relevance_level: int = 1) -> list[ParsedMetric]:
    """Parse a sequence of names (or one comma-separated string)."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    if not names:
        raise ValueError("no metrics given")
    if not isinstance(relevance_level, int) or isinstance(relevance_level, bool):
        raise ValueError(f"relevance_level must be an int, got {relevance_level!r}")
    return [parse_metric(name, relevance_level) for name in names]

"""`evaluate` / `evaluate_per_query`: trec_eval numbers via ir_measures (pytrec_eval), MRR the MS MARCO way.

Which queries are averaged:

* RR (``RR@10``/``MRR@10``, any cutoff): every query of the qrels, a query missing from the run
  scoring 0 -- exactly MS MARCO's ``msmarco_passage_eval.py`` (see `reciprocal_rank`).
* every other measure: trec_eval semantics (no ``-c``): the queries present in BOTH the run (with at
  least one document) and the qrels; qrels queries with no relevant document are included (scoring 0).
  Note: ir_measures itself reports a 0 for every qrels query missing from the run (like trec_eval
  ``-c``); crossrank drops those values to keep trec_eval's default.

Ranking: trec_eval's (score desc, ties -- equal as float32 -- by doc id descending).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import ir_measures

from crossrank.data.qrels import load_qrels
from crossrank.data.runs import load_run
from crossrank.evaluation.measures import DEFAULT_METRICS, ParsedMetric, parse_metrics
from crossrank.evaluation.reciprocal_rank import reciprocal_rank_per_query

QrelsLike = Mapping[str, Mapping[str, int]] | str | os.PathLike
RunLike = Mapping[str, Mapping[str, float]] | str | os.PathLike


def as_qrels(qrels: QrelsLike) -> Mapping[str, Mapping[str, int]]:
    return load_qrels(qrels) if isinstance(qrels, (str, os.PathLike)) else qrels


def as_run(run: RunLike) -> Mapping[str, Mapping[str, float]]:
    return load_run(run) if isinstance(run, (str, os.PathLike)) else run


def _ir_measures_per_query(metrics: list[ParsedMetric], qrels, run) -> dict[str, dict[str, float]]:
    by_measure = {m.measure: m.name for m in metrics}
    values: dict[str, dict[str, float]] = {m.name: {} for m in metrics}
    if not by_measure:
        return values
    plain_run = {qid: {d: float(s) for d, s in docs.items()} for qid, docs in run.items()}
    plain_qrels = {qid: {d: int(r) for d, r in docs.items()} for qid, docs in qrels.items()}
    for metric in ir_measures.iter_calc(list(by_measure), plain_qrels, plain_run):
        if plain_run.get(metric.query_id):  # ir_measures adds 0 for qrels queries absent from the run
            values[by_measure[metric.measure]][metric.query_id] = float(metric.value)
    for m in metrics:  # one ir_measures measure may be asked for under two names
        values[m.name] = values[by_measure[m.measure]]
    return values


def per_measure(qrels: QrelsLike, run: RunLike, metrics: Sequence[str] | str = DEFAULT_METRICS,
                relevance_level: int = 1) -> dict[str, dict[str, float]]:
    """``{metric name: {qid: value}}`` over the queries described in the module docstring."""
    parsed = parse_metrics(metrics, relevance_level)
    qrels, run = as_qrels(qrels), as_run(run)
    if not set(qrels) & set(run):
        raise ValueError("no query of the run is in the qrels (wrong qrels or run file?)")
    values = _ir_measures_per_query([m for m in parsed if not m.is_reciprocal_rank], qrels, run)
    for m in parsed:
        if m.is_reciprocal_rank:
            cutoff = m.measure.params.get("cutoff")
            values[m.name] = reciprocal_rank_per_query(qrels, run, cutoff, m.measure["rel"])
    return {m.name: values[m.name] for m in parsed}


def _mean(values: Mapping[str, float]) -> float:
    return sum(values.values()) / len(values) if values else 0.0


def evaluate(qrels: QrelsLike, run: RunLike, metrics: Sequence[str] | str = DEFAULT_METRICS,
             relevance_level: int = 1) -> dict[str, float]:
    """Mean of each metric, keyed by the names as given.

    ``qrels``/``run``: dicts as returned by `load_qrels`/`load_run`, or paths to such files.
    ``relevance_level``: minimum grade counted relevant by binary measures (RR, AP, R, P, ...);
    nDCG always uses the graded judgments. Unknown metric -> ValueError naming it.
    """
    return {name: _mean(values) for name, values in per_measure(qrels, run, metrics, relevance_level).items()}


def evaluate_per_query(qrels: QrelsLike, run: RunLike, metrics: Sequence[str] | str = DEFAULT_METRICS,
                       relevance_level: int = 1) -> dict[str, dict[str, float]]:
    """``{qid: {metric name: value}}``. A metric is present for a query iff it is averaged over it:
    RR for every qrels query, the others for queries in both run and qrels."""
    result: dict[str, dict[str, float]] = {}
    for name, values in per_measure(qrels, run, metrics, relevance_level).items():
        for qid, value in values.items():
            result.setdefault(qid, {})[name] = value
    return result

"""Choosing fusion weights that cannot lose to their inputs (on the queries they were chosen on).

`choose_fusion` takes every scorer's scores on held-out, judged queries and measures each input
alone (the cross-encoder, the bi-encoder cosine -- with each feedback option --, the first stage)
and a small grid of fused settings (the cross-encoder weight included in the grid, 0 among its
values, and each feedback option). The best fused setting is kept only when it beats the best
single input by more than `min_gain`; otherwise the choice is that input alone (its weight 1, the
others 0), and `FusionChoice.reason` says which and why. The choice (`crossrank.model.fusion.FusionChoice`)
is what `FusedReranker` holds and fusion.json keeps.

Why a margin: on the few hundred held-out queries a quickstart has, a fused setting picked from a
grid of ~100 beats the best input by a few thousandths of nDCG@10 by chance alone (one query moving
one rank is ~0.002-0.005), and such a win does not carry to unseen queries -- a cross-encoder
trained on little data can make the fusion rank below the bi-encoder it contains. `MIN_GAIN`
(0.002) is the smallest gain trusted; pass a larger one for fewer queries.

Ties are broken by preference, deterministically: fewer non-zero inputs, then feedback off, then
smaller weights (their sum, then field by field), then smaller feedback settings; among single
inputs the cheaper one (first stage, then bi-encoder, then cross-encoder). Settings that
are multiples of one another rank the same, so only the smallest of them is measured.

Pure numpy and `crossrank.evaluation.evaluate`: no model is loaded; the caller scores the queries.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict

import numpy as np

from crossrank.evaluation import evaluate
from crossrank.model.fusion import MIN_GAIN, Feedback, FusionChoice, FusionWeights, fuse_lists

INPUTS = ("cross_encoder", "dense", "first_stage")  # FusionWeights' fields
CHEAPEST_FIRST = ("first_stage", "dense", "cross_encoder")  # ties among single inputs go to the cheaper one
LABELS = {"cross_encoder": "cross-encoder", "dense": "bi-encoder", "first_stage": "first stage"}
CE_GRID = (0.0, 0.5, 1.0)
DENSE_GRID = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
STAGE_GRID = (0.0, 0.25, 0.5, 1.0)
_TIE = 1e-9  # a setting replaces an earlier (preferred) one only when better by more than this


def _refuse(what: str, got) -> ValueError:
    return ValueError(f"choose_fusion expects {what}, but got {got}")


def _check_lists(qids: Sequence, doc_ids: Sequence) -> list[int]:
    """The candidate-list lengths, after checking the query ids and doc ids."""
    if isinstance(qids, (str, bytes)) or not isinstance(qids, Sequence) or not qids:
        raise _refuse("a non-empty list of query ids", repr(qids)[:80])
    if any(not isinstance(q, str) for q in qids) or len(set(qids)) != len(qids):
        raise _refuse("distinct string query ids", [q for q in qids if not isinstance(q, str) or qids.count(q) > 1][:5])
    if isinstance(doc_ids, (str, bytes)) or not isinstance(doc_ids, Sequence) or len(doc_ids) != len(qids):
        raise _refuse(f"one doc id list per query ({len(qids)})", f"{type(doc_ids).__name__} of length "
                      f"{len(doc_ids) if hasattr(doc_ids, '__len__') else '?'}")
    for q, docs in zip(qids, doc_ids):
        if isinstance(docs, (str, bytes)) or not isinstance(docs, Sequence) or any(not isinstance(d, str) for d in docs):
            raise _refuse(f"a list of string doc ids for query {q}", repr(docs)[:80])
        if len(set(docs)) != len(docs):
            raise _refuse(f"distinct doc ids in query {q}'s list", f"{len(docs) - len(set(docs))} repeated")
    return [len(docs) for docs in doc_ids]


def _check_scores(name: str, scores, qids: Sequence[str], lengths: list[int]) -> list[np.ndarray] | None:
    if scores is None:
        return None
    if isinstance(scores, np.ndarray) or not isinstance(scores, Sequence) or len(scores) != len(qids):
        raise _refuse(f"{name} as a list of one score array per query ({len(qids)})",
                      f"{type(scores).__name__} of length {len(scores) if hasattr(scores, '__len__') else '?'}")
    checked = []
    for q, n, s in zip(qids, lengths, scores):
        array = np.asarray(s, dtype=np.float64) if s is not None else None
        if array is None or array.shape != (n,):
            raise _refuse(f"{name} scores of shape ({n},) for query {q} (one per candidate)",
                          "None" if array is None else f"shape {array.shape}")
        if not np.isfinite(array).all():
            raise _refuse(f"finite {name} scores", f"non-finite ones for query {q}")
        checked.append(array)
    return checked


def _check_vectors(vectors, qids: Sequence[str], lengths: list[int]) -> list[tuple[np.ndarray, np.ndarray]] | None:
    if vectors is None:
        return None
    if not isinstance(vectors, Sequence) or len(vectors) != len(qids):
        raise _refuse(f"vectors as one (query vector, passage matrix) pair per query ({len(qids)})",
                      f"{type(vectors).__name__} of length {len(vectors) if hasattr(vectors, '__len__') else '?'}")
    checked = []
    for q, n, pair in zip(qids, lengths, vectors):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise _refuse(f"a (query vector, passage matrix) pair for query {q}", type(pair).__name__)
        qv, pv = np.asarray(pair[0]), np.asarray(pair[1])  # kept as given: the cosines are those FusedReranker computes
        if not (np.issubdtype(qv.dtype, np.number) and np.issubdtype(pv.dtype, np.number)):
            raise _refuse(f"numeric vectors for query {q}", f"dtypes {qv.dtype} and {pv.dtype}")
        if qv.ndim != 1 or pv.shape != (n, qv.shape[0] if qv.ndim == 1 else -1):
            raise _refuse(f"a (dim,) query vector and a ({n}, dim) passage matrix for query {q}", f"shapes {qv.shape} and {pv.shape}")
        if not (np.isfinite(qv).all() and np.isfinite(pv).all()):
            raise _refuse("finite vectors", f"non-finite ones for query {q}")
        checked.append((qv, pv))
    return checked


def _check_grid(name: str, grid) -> tuple[float, ...]:
    if isinstance(grid, (str, bytes)) or not isinstance(grid, Sequence) or not grid:
        raise _refuse(f"{name} to be a non-empty sequence of weights", repr(grid))
    if any(isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0 for w in grid):
        raise _refuse(f"{name} weights to be finite numbers >= 0", list(grid))
    return tuple(sorted({float(w) for w in grid}))


def _check_options(feedback_options, metric, relevance_level, min_gain) -> list[Feedback]:
    if isinstance(feedback_options, Feedback) or not isinstance(feedback_options, Sequence) or not feedback_options:
        raise _refuse("feedback_options to be a non-empty sequence of Feedback", repr(feedback_options))
    if any(not isinstance(f, Feedback) for f in feedback_options):
        raise _refuse("feedback_options to hold Feedback settings only", [type(f).__name__ for f in feedback_options])
    if not isinstance(metric, str) or not metric:
        raise _refuse("metric to be one measure's name, e.g. 'nDCG@10'", repr(metric))
    if isinstance(relevance_level, bool) or not isinstance(relevance_level, int):
        raise _refuse("relevance_level to be an integer", repr(relevance_level))
    if isinstance(min_gain, bool) or not isinstance(min_gain, (int, float)) or not math.isfinite(min_gain) or min_gain < 0:
        raise _refuse("min_gain to be a finite number >= 0", repr(min_gain))
    off = Feedback()  # depth 0 or weight 0 changes nothing: one "off" setting
    options = {(f.depth, f.weight): f for f in (off if not f.depth or not f.weight else f for f in feedback_options)}
    return [options[k] for k in sorted(options)]


def _preference(weights: FusionWeights, feedback: Feedback) -> tuple:
    """Sort key: smaller is preferred when two settings score the same."""
    values = tuple(asdict(weights).values())
    return (len(weights.nonzero()), feedback.depth > 0, sum(values), values, feedback.depth, feedback.weight)


def _settings(grids: dict[str, tuple[float, ...]], options: list[Feedback]) -> list[tuple[FusionWeights, Feedback]]:
    """The fused settings (two or more non-zero weights) in preference order, one per direction of the weights."""
    seen, settings = set(), []
    for values in itertools.product(*(grids[name] for name in INPUTS)):
        if sum(1 for v in values if v) < 2:
            continue
        weights = FusionWeights(*values)
        for feedback in options if weights.dense else [Feedback()]:
            settings.append((weights, feedback))
    settings.sort(key=lambda s: _preference(*s))
    unique = []
    for weights, feedback in settings:
        values = tuple(asdict(weights).values())
        direction = (tuple(round(v / max(values), 9) for v in values), feedback.depth, feedback.weight)
        if direction not in seen:
            seen.add(direction)
            unique.append((weights, feedback))
    return unique


def _best(settings, value_of) -> tuple[tuple[FusionWeights, Feedback] | None, float | None]:
    """The highest-valued setting; an earlier (preferred) one is kept unless beaten by more than _TIE."""
    best, best_value = None, None
    for setting in settings:
        value = value_of(*setting)
        if best_value is None or value > best_value + _TIE:
            best, best_value = setting, value
    return best, best_value


def _feedback_note(feedback: Feedback) -> str:
    if not feedback.depth:
        return ""
    return f", with feedback of depth {feedback.depth}" + (f" and weight {feedback.weight:g}" if feedback.weight != 1 else "")


def choose_fusion(qids: Sequence[str], doc_ids: Sequence[Sequence[str]], cross_encoder: Sequence[np.ndarray] | None,
                  vectors: Sequence[tuple[np.ndarray, np.ndarray]] | None, first_stage: Sequence[np.ndarray] | None,
                  qrels: Mapping[str, Mapping[str, int]], *, metric: str = "nDCG@10", relevance_level: int = 1,
                  feedback_options: Sequence[Feedback] = (Feedback(0), Feedback(3, 1.0)), dense_grid: Sequence[float] = DENSE_GRID,
                  stage_grid: Sequence[float] = STAGE_GRID, ce_grid: Sequence[float] = CE_GRID,
                  min_gain: float = MIN_GAIN) -> FusionChoice:
    """Fusion weights and feedback for held-out queries that never score below the best single input there.

    Args:
        qids, doc_ids: the held-out queries and each one's candidate doc ids.
        cross_encoder, first_stage: one score array per query (aligned with its doc ids), or None
            when that scorer is not available.
        vectors: per query, the bi-encoder's (query vector, passage matrix) as from
            `DenseEncoder.encode_lists` (unit rows: cosines are dot products), or None.
        qrels: judgements; only the queries in `qids` are used (at least one must be judged).
        metric, relevance_level: the measure compared, as `crossrank.evaluation.evaluate` takes them.
        feedback_options: Rocchio feedback settings tried wherever the dense weight is non-zero.
        dense_grid, stage_grid, ce_grid: the weights tried for each scorer (all >= 0).
        min_gain: how much more than the best single input a fused setting must score to be chosen.

    Returns a `FusionChoice`; its `reason` says whether fusion won and by how much.
    """
    lengths = _check_lists(qids, doc_ids)
    scores = {"cross_encoder": _check_scores("cross_encoder", cross_encoder, qids, lengths),
              "dense": _check_vectors(vectors, qids, lengths),
              "first_stage": _check_scores("first_stage", first_stage, qids, lengths)}
    available = [name for name in INPUTS if scores[name] is not None]
    if not available:
        raise _refuse("the scores of at least one input (cross_encoder, vectors or first_stage)", "none")
    if not isinstance(qrels, Mapping):
        raise _refuse("qrels as a mapping {query id: {doc id: grade}}", type(qrels).__name__)
    judged = {q: qrels[q] for q in qids if q in qrels}
    if not judged:
        raise _refuse("judgements for the held-out queries", f"none of the {len(qids)} queries in qrels")
    grids = {"cross_encoder": _check_grid("ce_grid", ce_grid), "dense": _check_grid("dense_grid", dense_grid),
             "first_stage": _check_grid("stage_grid", stage_grid)}
    options = _check_options(feedback_options, metric, relevance_level, min_gain)
    grids = {name: grid if scores[name] is not None else (0.0,) for name, grid in grids.items()}

    def value_of(weights: FusionWeights, feedback: Feedback) -> float:
        fused = fuse_lists(weights, scores["cross_encoder"] if weights.cross_encoder else None,
                           scores["dense"] if weights.dense else None, scores["first_stage"] if weights.first_stage else None, feedback)
        run = {q: dict(zip(docs, map(float, s))) for q, docs, s in zip(qids, doc_ids, fused)}
        return evaluate(judged, run, metrics=[metric], relevance_level=relevance_level)[metric]

    singles: dict[str, tuple[tuple[FusionWeights, Feedback], float]] = {}
    for name in available:
        weights = FusionWeights(**{n: 1.0 if n == name else 0.0 for n in INPUTS})
        singles[name] = _best([(weights, f) for f in (options if name == "dense" else [Feedback()])], value_of)
    inputs = {name: value for name, (_, value) in singles.items()}
    best_name = None
    for name in sorted(available, key=CHEAPEST_FIRST.index):  # a tie goes to the cheaper input
        if best_name is None or inputs[name] > inputs[best_name] + _TIE:
            best_name = name
    (single_weights, single_feedback), single_value = singles[best_name]
    fused, fused_value = _best(_settings(grids, options), value_of)

    where = f"({metric} on {len(judged)} held-out queries)"
    label, note = LABELS[best_name], _feedback_note(single_feedback)
    if fused is None:
        reason = f"only the {label} was given: using it alone, {single_value:.4f}{note} {where}"
    elif fused_value - single_value > min_gain:
        reason = (f"fused {fused_value:.4f} beats the best single input ({label} {single_value:.4f}{note}) "
                  f"by {fused_value - single_value:.4f} {where}")
        return FusionChoice(fused[0], fused[1], fused_value, inputs, fused_value, reason, metric, len(judged), float(min_gain))
    else:
        reason = (f"fused {fused_value:.4f} does not beat the {label} alone ({single_value:.4f}{note}) by more than "
                  f"{min_gain:g}: using the {label} alone {where}")
    return FusionChoice(single_weights, single_feedback, single_value, inputs, fused_value, reason, metric, len(judged), float(min_gain))

"""The main job: train a cross-encoder on MS MARCO (dev600 train split), rerank TREC DL19 and
SciFact, compare with BM25, and write a report.

Everything goes under one output folder: the best model (`model/`, loadable by CrossEncoder, with
`fusion.json` beside it), the reranked runs, `metrics.json`, `report.md` and `report.png`.
"""
from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

NEEDED = {
    "msmarco-dev600": ("queries.tsv", "collection.tsv", "qrels.dev.small.600q.trec", "run.bm25.top20.trec", "split.tsv"),
    "trec-dl19": ("queries.dl19.tsv", "collection.tsv", "qrels.dl19-passage.txt", "runs/run.dl19.bm25.top100.trec"),
    "scifact": ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"),
}
METRICS = ["nDCG@10", "RR@10", "AP", "R@10"]


@dataclass
class QuickstartConfig:
    data: Path
    output: Path = Path("runs/quickstart")
    base_model: str = "minilm"
    # recipe 5 of docs/recipes.md: distillation from the bi-encoder the model starts from (ListNet on
    # 20 x cosine + 3 x label over lists of 1 positive + 15 BM25 negatives), the new head at its own rate
    loss: str = "listnet"
    loss_options: dict = field(default_factory=dict)
    learning_rate: float = 1e-4
    head_learning_rate: float | None = 2e-3
    teacher: str | None = "minilm"  # a bi-encoder whose cosine (scaled) + the label are the targets; None: labels
    teacher_scale: float = 20.0
    label_weight: float = 3.0
    epochs: float = 1.0
    max_steps: int = 150  # > 0: a fixed number of steps (the schedule anneals to 0 at the last); -1: epochs
    batch_size: int = 4
    num_negatives: int = 15
    max_length: int = 128
    eval_steps: int = 50
    precision: str = "auto"  # auto: each precision timed on the model's training step, the fastest used
    dl19_depth: int = 100
    scifact_depth: int = 30  # 100 doubles the run time on a 2-core CPU; --scifact-depth 100 for the full job
    scifact_max_length: int = 128
    fusion: bool = True
    feedback_depth: int = 3  # Rocchio feedback on the bi-encoder query from the fused top 3 (0: off)
    feedback_weight: float = 1.0
    metric_for_best: str = "RR@10"  # the tune split has one judged relevant per query: MS MARCO's measure
    seed: int = 12


def check_data(data: Path) -> None:
    """Every file the quickstart reads, or a clear message of what is missing and where to get it."""
    missing = [f"{d}/{f}" for d, files in NEEDED.items() for f in files if not (data / d / f).exists()]
    if missing:
        from crossrank.data.download import missing_data_message

        hint = missing_data_message(data, ["trec-dl-2019", "beir-scifact"]) or ""
        raise FileNotFoundError(
            f"quickstart data missing under {data}: {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}. "
            "Pass --data DIR (or set CROSSRANK_DATA) to the folder holding msmarco-dev600/, trec-dl19/ and scifact/. "
            f"The official TREC DL19 and SciFact files can be fetched with `crossrank download`. {hint}".strip()
        )


def train_config(cfg: QuickstartConfig, precision: str):
    from crossrank.training import TrainConfig

    d = cfg.data / "msmarco-dev600"
    sources = {"queries": str(d / "queries.tsv"), "corpus": str(d / "collection.tsv"), "qrels": str(d / "qrels.dev.small.600q.trec"),
               "run": str(d / "run.bm25.top20.trec"), "split": str(d / "split.tsv")}
    teacher = {} if not cfg.teacher else {
        "teacher": cfg.teacher, "teacher_kind": "bi-encoder", "teacher_scale": cfg.teacher_scale, "label_weight": cfg.label_weight,
        "teacher_cache": str(cfg.output / "teacher_scores.tsv")}
    return TrainConfig.from_dict({
        "model": cfg.base_model, "output_dir": str(cfg.output / "training"), "loss": cfg.loss, "loss_options": dict(cfg.loss_options),
        "batch_size": cfg.batch_size, "learning_rate": cfg.learning_rate, "head_learning_rate": cfg.head_learning_rate, "epochs": cfg.epochs, "max_steps": cfg.max_steps, "max_length": cfg.max_length,
        "precision": precision, "seed": cfg.seed, "logging_steps": 5, "save_steps": cfg.eval_steps, "save_total_limit": 1,
        "data": {"format": "lists", "num_negatives": cfg.num_negatives, "sampling": "top", "depth": 20, **sources, **teacher},
        "eval": {**sources, "split_name": "tune", "depth": 20, "steps": cfg.eval_steps, "metric_for_best": cfg.metric_for_best,
                 "metrics": ["RR@10", "nDCG@10", "AP"]},
    }, source="quickstart")


@dataclass
class Scored:
    """One dataset's candidates with every scorer's scores, query by query."""

    qids: list[str]
    doc_ids: list[list[str]]
    scores: dict[str, list[np.ndarray]]  # scorer name -> per-query scores
    vectors: list[tuple[np.ndarray, np.ndarray]] | None = None  # per query: bi-encoder query vector, passage vectors

    def run(self, values: list[np.ndarray]) -> dict[str, dict[str, float]]:
        return {q: {d: float(s) for d, s in zip(docs, vals)} for q, docs, vals in zip(self.qids, self.doc_ids, values)}


def score_candidates(candidates, model, dense, batch_size: int | None = None) -> tuple[Scored, float]:
    """Cross-encoder and first-stage scores of candidate lists, with the bi-encoder's vectors; returns pairs/s of the cross-encoder."""
    queries = [c.query for c in candidates]
    texts = [c.texts for c in candidates]
    start = time.perf_counter()
    ce = model.rerank_many(queries, texts, batch_size=batch_size, show_progress_bar=True)
    seconds = time.perf_counter() - start
    scores = {"cross_encoder": ce, "first_stage": [np.asarray(c.first_stage, dtype=np.float64) for c in candidates]}
    vectors = dense.encode_lists(queries, texts, show_progress=True) if dense is not None else None
    n_pairs = sum(len(t) for t in texts)
    return Scored([c.query_id for c in candidates], [c.doc_ids for c in candidates], scores, vectors), n_pairs / max(seconds, 1e-9)


def fused(scored: Scored, weights, feedback=None) -> list[np.ndarray]:
    from crossrank.model.fusion import fuse_lists

    return fuse_lists(weights, scored.scores["cross_encoder"], scored.vectors if weights.dense else None,
                      scored.scores["first_stage"], feedback)


def tune_fusion(scored: Scored, qrels, use_dense: bool):
    """Grid-search fusion weights on held-out queries by nDCG@10 (the cross-encoder weight fixed at 1)."""
    from crossrank.evaluation import evaluate
    from crossrank.model.fusion import FusionWeights

    dense_grid = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0] if use_dense else [0.0]
    best, best_value = FusionWeights(), -1.0
    for dense_w, stage_w in itertools.product(dense_grid, [0.0, 0.25, 0.5, 1.0]):
        weights = FusionWeights(cross_encoder=1.0, dense=dense_w, first_stage=stage_w)
        value = evaluate(qrels, scored.run(fused(scored, weights)), metrics=["nDCG@10"])["nDCG@10"]
        if value > best_value + 1e-9:
            best, best_value = weights, value
    return best, best_value


def run_quickstart(cfg: QuickstartConfig) -> dict:
    from crossrank import CrossEncoder
    from crossrank.data import iter_corpus, iter_queries, load_qrels, write_run
    from crossrank.evaluation import evaluate, evaluate_per_query
    from crossrank.model.dense import DenseEncoder
    from crossrank.pipeline import Candidates, from_run
    from crossrank.retrieval import BM25Index
    from crossrank.training.datasets import build_evaluator
    from crossrank.training.trainer import train
    from crossrank.workflows.report import plot, table, write_report

    check_data(cfg.data)
    out = cfg.output
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    # 1. train on the dev600 train split, keep the best checkpoint by the tune split's RR@10
    print(f"[1/4] training {cfg.base_model} on msmarco-dev600 (train split), {cfg.loss} loss")
    tc = train_config(cfg, cfg.precision)
    start = time.perf_counter()
    result = train(tc, resume=(out / "training").exists() and any((out / "training").glob("checkpoint-*")))
    timings["training_s"] = time.perf_counter() - start
    precision = result.precision  # measured on this host when cfg.precision is "auto"
    model_dir = out / "model"
    model = CrossEncoder(result.model_dir, dtype="bf16" if precision == "bf16" else None)
    model.save(model_dir)
    dense = DenseEncoder(precision="bf16" if precision == "bf16" else "fp32") if cfg.fusion else None

    # 2. fusion weights from the tune split (held out from training)
    print("[2/4] tuning score fusion on the tune split")
    tune_eval = build_evaluator(tc.eval, name="tune")
    tune_cands = [Candidates(q, tune_eval.queries[q], list(docs), [tune_eval.texts[d] for d in docs], [float(-r) for r in range(len(docs))])
                  for q, docs in tune_eval.candidates.items()]
    tune_scored, _ = score_candidates(tune_cands, model, dense)
    tune_qrels = {q: tune_eval.qrels[q] for q in tune_eval.candidates if q in tune_eval.qrels}
    weights, tune_value = tune_fusion(tune_scored, tune_qrels, dense is not None)
    from crossrank.model.fusion import Feedback, FusedReranker

    # feedback keeps its usual setting: the tune split (one judged passage of 20 per query) cannot measure
    # what it is for, finding more of a query's relevant passages (docs/recipes.md)
    feedback = Feedback(cfg.feedback_depth if weights.dense else 0, cfg.feedback_weight)
    FusedReranker(model, dense, weights, feedback).save_weights(model_dir)
    print(f"      fusion weights {asdict(weights)} (tune nDCG@10 {tune_value:.4f}), feedback {asdict(feedback)}")

    rows: dict[str, dict[str, dict[str, float]]] = {}
    per_query: dict[str, tuple[dict, dict]] = {}
    speeds: dict[str, float] = {}

    def report_dataset(name, scored: Scored, qrels, level: int):
        runs = {"BM25": scored.run(scored.scores["first_stage"]), "crossrank cross-encoder": scored.run(scored.scores["cross_encoder"])}
        if weights.dense or weights.first_stage:
            runs["crossrank fused"] = scored.run(fused(scored, weights, feedback))
        rows[name] = {}
        for system, run in runs.items():
            slug = system.replace(" ", "_")
            write_run(out / f"{name}.{slug}.trec", run, tag=slug)
            rows[name][system] = evaluate(qrels, run, metrics=METRICS, relevance_level=level)
        final = list(runs)[-1]
        per_query[name] = tuple(
            {q: v["nDCG@10"] for q, v in evaluate_per_query(qrels, runs[s], metrics=["nDCG@10"], relevance_level=level).items()}
            for s in ("BM25", final)
        )

    # 3. TREC DL19: BM25 top-100 reranked
    print(f"[3/4] reranking TREC DL19 BM25 top-{cfg.dl19_depth}")
    dl19 = cfg.data / "trec-dl19"
    cands = list(from_run(dl19 / "runs" / "run.dl19.bm25.top100.trec", dl19 / "collection.tsv", dl19 / "queries.dl19.tsv", cfg.dl19_depth))
    scored, speeds["TREC DL19"] = score_candidates(cands, model, dense)
    report_dataset("TREC DL19", scored, load_qrels(dl19 / "qrels.dl19-passage.txt"), level=2)

    # 4. SciFact, out of domain: BM25 over the whole corpus, top-k reranked
    print(f"[4/4] SciFact: BM25 over the whole corpus, reranking the top-{cfg.scifact_depth}")
    sf = cfg.data / "scifact"
    qrels = load_qrels(sf / "qrels" / "test.tsv")
    queries = [q for q in iter_queries(sf / "queries.jsonl") if q.query_id in qrels]
    passages = list(iter_corpus(sf / "corpus.jsonl"))
    index = BM25Index.build(passages, show_progress=False)
    bm25 = index.search(queries, k=cfg.scifact_depth, show_progress=False)
    write_run(out / "scifact.bm25.trec", bm25, tag="bm25")
    from crossrank.data import Collection

    texts = Collection.from_passages(passages)
    qtext = {q.query_id: q.text for q in queries}
    sf_cands = [Candidates(q, qtext[q], list(docs), [texts[d] for d in docs], list(docs.values())) for q, docs in bm25.items()]
    model.max_length = min(model.max_length, cfg.scifact_max_length)
    scored, speeds["SciFact"] = score_candidates(sf_cands, model, dense)
    report_dataset("SciFact", scored, qrels, level=1)

    timings["total_s"] = time.perf_counter() - start
    summary = {
        "metrics": rows, "fusion_weights": asdict(weights), "feedback": asdict(feedback), "tune_nDCG@10": tune_value, "precision": precision,
        "training": {"steps": result.global_step, "seconds": round(timings["training_s"], 1), "pairs_per_s": round(result.pairs_per_second, 1),
                     f"best_tune_{cfg.metric_for_best}": result.best_metric},
        "rerank_pairs_per_s": {k: round(v, 1) for k, v in speeds.items()},
        "training_symptoms": [sym.name for sym in result.symptoms],
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    text = table(rows, METRICS)
    png = plot(out / "report.png", result.log_history, cfg.metric_for_best, per_query)
    write_report(out / "report.md", [
        ("", "# crossrank quickstart report"),
        ("Ranking quality", text),
        ("Run", "\n".join([
            f"- base model: {cfg.base_model}; loss {cfg.loss} {cfg.loss_options}; lr {cfg.learning_rate} (head {cfg.head_learning_rate}); "
            + (f"{cfg.max_steps} steps; " if cfg.max_steps > 0 else f"epochs {cfg.epochs}; ")
            + (f"targets {cfg.teacher_scale:g} x bi-encoder ({cfg.teacher}) cosine + {cfg.label_weight:g} x label; " if cfg.teacher else "")
            + f"batch {cfg.batch_size} queries x {cfg.num_negatives + 1} passages; max_length {cfg.max_length}; precision {precision}",
            f"- training: {result.global_step} steps in {timings['training_s']:.0f} s ({result.pairs_per_second:.1f} pairs/s); "
            f"best tune {cfg.metric_for_best} {result.best_metric if result.best_metric is not None else float('nan'):.4f}",
            f"- fusion weights (tuned on the dev600 tune split): {asdict(weights)}; dense feedback {asdict(feedback)}",
            "- cross-encoder scoring: " + ", ".join(f"{k} {v:.1f} pairs/s" for k, v in speeds.items()),
            f"- total time: {timings['total_s']:.0f} s",
        ])),
        ("Training health", "\n".join([f"- **WARNING** {sym.message()}" for sym in result.symptoms]
                                       or ["- no symptom of collapse, chance-level loss or divergence"])
         + "\n\nData check and precision choice: `training/training_report.md`."),
        ("Plot", f"![training and per-query results]({png.name})"),
    ])
    print("\n" + text)
    print(f"\nreport: {out / 'report.md'}  plot: {png}  model: {model_dir}")
    return summary

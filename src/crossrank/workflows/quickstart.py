"""The main job: train a cross-encoder on MS MARCO (dev600 train split), rerank TREC DL19 and
SciFact, compare with BM25, and write a report.

Everything goes under one output folder: the best model (`model/`, loadable by CrossEncoder, with
`fusion.json` beside it), the reranked runs, `metrics.json`, `report.md` and `report.png`.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from crossrank.workflows.scored import dataset_runs, score_candidates, tune_fusion

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
    # recipe 6 of docs/recipes.md: distillation (ListNet) from a teacher chosen on the train split (the
    # bi-encoder the model starts from, BM25, or their fusion) over the judged train queries and pseudo-queries
    # from the dev600 collection (tune candidates held out); embeddings and 3 lowest layers frozen
    loss: str = "listnet"
    loss_options: dict = field(default_factory=dict)
    learning_rate: float = 2e-4  # recipe 7b: best tune RR@10 0.4178 at 2e-4 vs 0.4005 at 1e-4 (300 steps, same data; docs/recipes.md)
    head_learning_rate: float | None = 2e-3
    teacher: str | None = "minilm"  # the teacher's bi-encoder (fused with BM25 as the train split chooses); None: labels
    teacher_scale: float = 2.0  # targets = scale x the teacher's z-normalised score (+ label_weight x label, judged queries)
    label_weight: float = 3.0
    pseudo_queries: int = 1000  # pseudo-queries from the dev600 collection (0: judged queries only)
    pseudo_strategy: str = "sentence"
    scifact_pseudo_queries: int = 300  # pseudo-queries from the SciFact corpus (a user's own corpus; never its queries or qrels); chosen on the tune sets, docs/recipes.md
    # their teacher: the bi-encoder + `scifact_teacher_bm25` x BM25 (each z-normalised within the list; 0: the teacher chosen
    # on the dev600 train split, the bi-encoder alone). Off: as teachers on 100 SciFact train claims 1:1 beats the bi-encoder
    # (0.7736 vs 0.7133 nDCG@10), but the student trained on it does not (0.7040 vs 0.7079; tune RR@10 0.4008 vs 0.4178), recipe 7t
    scifact_teacher_bm25: float = 0.0
    freeze_layers: int = 3  # embeddings and the 3 lowest layers fixed: a 1.3x cheaper step, measured
    epochs: float = 1.0
    max_steps: int = 300  # > 0: a fixed number of steps (the schedule anneals to 0 at the last); -1: epochs. 300: recipe 7, chosen on the tune split
    batch_size: int = 4
    num_negatives: int = 15
    max_length: int = 96  # training pairs; scoring uses rerank_max_length
    rerank_max_length: int = 128
    eval_steps: int = 100  # tune evaluations (~19 s each here) at 100, 200, 300: in the quickstart runs of recipes 6-7 the best checkpoint was the last one
    precision: str = "auto"  # auto: each precision timed on the model's training step, the fastest used
    scoring_precision: str = "auto"  # evaluation sets' cross-encoder: auto = bf16 where faster and faithful on the tune split, else fp32
    # faithful there: top-10 overlap >= 0.95 and nDCG@10 within this of fp32. The tune split judges one passage per query, so
    # one swap of ranks 1 and 2 moves nDCG@10 by 0.0037 over 100 queries: 0.01 allows two (0.005 refused bf16 paths at overlap 0.992-0.996)
    scoring_max_ndcg_diff: float = 0.01
    dense_precision: str = "auto"  # the bi-encoder's: auto = bf16 where its forward pass measures faster (2.1-2.3x, cosines >= 0.9999)
    dense_backend: str = "auto"  # auto: OpenVINO where installed and measured >= 1.1x torch at that precision (DenseEncoder)
    dl19_depth: int = 100
    scifact_depth: int = 30  # 100 doubles the run time on a 2-core CPU; --scifact-depth 100 for the full job
    scifact_max_length: int = 96  # the training length: 96 >= 128 > 256 on a SciFact train-query sample (docs/recipes.md), and faster
    # long passages out of domain (SciFact, BEIR-layout sets): windows of `window_size` tokens, no overlap, the first and the
    # `window_keep - 1` sharing most query tokens scored, max of them (0: truncation). Chosen on a SciFact train-query sample
    # (docs/recipes.md, recipe 7w): 0.7182 nDCG@10 vs 0.6428 truncated and 0.6974 with every window, at 3.3x truncation's cost
    window_size: int = 72
    window_keep: int = 3
    fusion: bool = True
    feedback_depth: int = 3  # Rocchio feedback on the bi-encoder query from the fused top 3 (0: off)
    feedback_weight: float = 1.0
    metric_for_best: str = "RR@10"  # the tune split has one judged relevant per query: MS MARCO's measure
    fusion_min_gain: float = 0.01  # fusion must beat its best input on the tune split by this much (else: that input alone)
    # small BEIR-layout collections under `data`, NanoBEIR-style: a seeded sample of judged test queries, BM25 over the whole
    # corpus, the top `beir_depth` reranked; reported with their mean nDCG@10 (evaluation only: nothing is chosen on them)
    beir_folders: tuple[str, ...] = ("classic/cacm", "classic/cisi", "classic/cranfield", "classic/vaswani-npl")
    beir_queries: int = 50  # per collection, as NanoBEIR
    beir_depth: int = 20
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


def dev600_sources(data: Path) -> dict[str, str]:
    d = data / "msmarco-dev600"
    return {"queries": str(d / "queries.tsv"), "corpus": str(d / "collection.tsv"), "qrels": str(d / "qrels.dev.small.600q.trec"),
            "run": str(d / "run.bm25.top20.trec"), "split": str(d / "split.tsv")}


def train_config(cfg: QuickstartConfig, precision: str, examples: Path | None = None):
    """The training run: on `examples` (teacher targets already in them), or on the judged labels alone."""
    from crossrank.training import TrainConfig

    sources = dev600_sources(cfg.data)
    data = {"format": "lists", "examples": str(examples)} if examples else {
        "format": "lists", "num_negatives": cfg.num_negatives, "sampling": "top", "depth": 20, **sources}
    return TrainConfig.from_dict({
        "model": cfg.base_model, "output_dir": str(cfg.output / "training"), "loss": cfg.loss, "loss_options": dict(cfg.loss_options),
        "batch_size": cfg.batch_size, "learning_rate": cfg.learning_rate, "head_learning_rate": cfg.head_learning_rate, "epochs": cfg.epochs,
        "max_steps": cfg.max_steps, "max_length": cfg.max_length, "freeze_layers": cfg.freeze_layers,
        "precision": precision, "seed": cfg.seed, "logging_steps": 5, "save_steps": cfg.eval_steps, "save_total_limit": 1,
        "data": data,
        "eval": {**sources, "split_name": "tune", "depth": 20, "steps": cfg.eval_steps, "metric_for_best": cfg.metric_for_best,
                 "metrics": ["RR@10", "nDCG@10", "AP"]},
    }, source="quickstart")


@dataclass
class Results:
    """Every dataset's metrics, paired tests and per-query nDCG@10, filled as datasets are reported."""

    out: Path
    rows: dict = field(default_factory=dict)
    tests: dict = field(default_factory=dict)
    per_query: dict = field(default_factory=dict)
    speeds: dict = field(default_factory=dict)
    scoring: dict = field(default_factory=dict)  # scorer -> its precision and why (cross-encoder: `ScoringPrecision.record()`)

    def add(self, name: str, runs: dict, qrels, level: int) -> None:
        from crossrank.data import write_run
        from crossrank.evaluation import evaluate, evaluate_per_query
        from crossrank.workflows.report import paired_tests

        self.rows[name] = {}
        slug = name.lower().replace(" ", "-")
        for system, run in runs.items():
            tag = system.replace(" ", "_")
            write_run(self.out / f"{slug}.{tag}.trec", run, tag=tag)
            self.rows[name][system] = evaluate(qrels, run, metrics=METRICS, relevance_level=level)
        baselines = tuple(b for b in ("BM25", "bi-encoder") if b in runs)
        self.tests[name] = paired_tests(qrels, runs, baselines, "nDCG@10", level)
        final = list(runs)[-1]
        self.per_query[name] = tuple(
            {q: v["nDCG@10"] for q, v in evaluate_per_query(qrels, runs[s], metrics=["nDCG@10"], relevance_level=level).items()}
            for s in ("BM25", final))


def train_step(cfg: QuickstartConfig, dense):
    """Training data (judged + pseudo-queries, teacher targets), then training; returns (TrainResult, TrainingData | None)."""
    from crossrank.training.trainer import train
    from crossrank.workflows.training_data import build_training_data

    out = cfg.output
    data = None
    if cfg.teacher:
        teacher_dense = dense if dense is not None and cfg.teacher == "minilm" else _teacher_encoder(cfg.teacher)
        data = build_training_data(dev600_sources(cfg.data), out / "training_examples.jsonl", teacher_dense,
                                   pseudo_queries=cfg.pseudo_queries, strategy=cfg.pseudo_strategy, num_negatives=cfg.num_negatives,
                                   scale=cfg.teacher_scale, label_weight=cfg.label_weight, seed=cfg.seed,
                                   other_corpora=other_corpora(cfg), other_teacher=other_teacher(cfg))
        print(f"      {data.judged} judged + {data.pseudo} pseudo-query lists ({data.skipped})\n"
              f"      teacher: {data.teacher} ({data.teacher_reason}); on the tune split: "
              + ", ".join(f"{k} RR@10 {v:.4f}" for k, v in data.teacher_tune.items()), flush=True)
    tc = train_config(cfg, cfg.precision, data.examples_path if data else None)
    resume = (out / "training").exists() and any((out / "training").glob("checkpoint-*"))
    return train(tc, resume=resume), data, tc


def other_corpora(cfg: QuickstartConfig) -> list:
    """Pseudo-query sources beside the dev600 collection: the SciFact corpus when asked for (domain adaptation)."""
    from crossrank.training.corpus_examples import PseudoDataConfig

    if not cfg.scifact_pseudo_queries:
        return []
    return [PseudoDataConfig(str(cfg.data / "scifact" / "corpus.jsonl"), cfg.pseudo_strategy, cfg.scifact_pseudo_queries,
                             cfg.num_negatives, seed=cfg.seed)]


def other_teacher(cfg: QuickstartConfig):
    """The teacher of the SciFact pseudo-queries: the bi-encoder fused with BM25 (None: the one chosen on dev600)."""
    from crossrank.training.teachers import TeacherConfig

    if not cfg.scifact_teacher_bm25:
        return None
    return TeacherConfig(dense=1.0, first_stage=cfg.scifact_teacher_bm25, feedback_depth=0)


def _teacher_encoder(name: str):
    from crossrank.training.distillation import load_teacher

    return load_teacher(name, "bi-encoder")


def check_settings(cfg: QuickstartConfig) -> None:
    """Every numeric setting in its range (`crossrank.data.ranges`), before any work."""
    from crossrank.data.ranges import Range, check_ranges

    count, positive = Range(1, integer=True), Range(0, open_low=True)
    check_ranges("quickstart", cfg, {
        "beir_queries": Range(0, integer=True), "beir_depth": count, "dl19_depth": count, "scifact_depth": count, "window_size": count,
        "window_keep": Range(0, integer=True), "learning_rate": positive, "head_learning_rate": Range(0, open_low=True, optional=True),
        "teacher_scale": positive, "label_weight": Range(0), "pseudo_queries": Range(0, integer=True),
        "scifact_pseudo_queries": Range(0, integer=True), "scifact_teacher_bm25": Range(0), "freeze_layers": Range(0, integer=True), "epochs": positive,
        "max_steps": Range(1, integer=True, also=(-1,)), "batch_size": count, "num_negatives": count, "max_length": count,
        "rerank_max_length": count, "eval_steps": count, "scoring_max_ndcg_diff": Range(0), "scifact_max_length": count, "feedback_depth": Range(0, integer=True),
        "feedback_weight": Range(0), "fusion_min_gain": Range(0), "seed": Range(0, integer=True)})


def run_quickstart(cfg: QuickstartConfig) -> dict:
    """The whole job (see the module docstring); returns what metrics.json holds."""
    from crossrank import CrossEncoder
    from crossrank.model.dense import DenseEncoder
    from crossrank.model.vector_cache import VectorCache

    check_data(cfg.data)
    check_settings(cfg)
    out = cfg.output
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    # one bi-encoder pass per distinct text over the whole job, kept on disk so that a restart embeds nothing twice
    dense = (DenseEncoder(precision=cfg.dense_precision, cache=VectorCache(out / "dense_vectors.npz"), backend=cfg.dense_backend)
             if cfg.fusion or cfg.teacher == "minilm" else None)
    if dense is not None:
        print(f"      bi-encoder precision: {dense.precision} ({dense.precision_reason})", flush=True)

    # 1. training data and training; the best checkpoint by the tune split's RR@10
    print(f"[1/5] training {cfg.base_model} on msmarco-dev600 (train split + {cfg.pseudo_queries} pseudo-queries) + {cfg.scifact_pseudo_queries} SciFact-corpus pseudo-queries, {cfg.loss} loss")
    result, data, tc = train_step(cfg, dense)
    timings["training_s"] = time.perf_counter() - start
    model = CrossEncoder(result.model_dir, max_length=cfg.rerank_max_length)
    dense = dense if cfg.fusion else None
    (out / "model").mkdir(exist_ok=True)  # the fusion weights go there first
    choice, scoring = fusion_step(cfg, model, dense, tc)
    model.save(out / "model")  # after the tune split: an OpenVINO conversion made there goes with it
    results = Results(out, scoring={"cross_encoder": scoring.record()} | (
        {} if dense is None else {"bi_encoder": {"precision": dense.precision, "bf16_weights": dense.bf16_weights, "backend": dense.backend,
                                        "reason": dense.precision_reason}}))
    dl19_step(cfg, model, dense, choice, results)
    scifact_step(cfg, model, dense, choice, results)
    beir_sets(cfg, model, dense, choice, results)

    timings["total_s"] = time.perf_counter() - start
    summary = summarise(cfg, result, data, choice, results, timings)
    write_outputs(cfg, result, data, choice, results, timings)
    return summary


def fusion_step(cfg: QuickstartConfig, model, dense, tc):
    """2. The tune split (held out from training), scored exactly: the evaluation sets' scoring precision
    (bf16 only where faster and faithful there) and the fusion, guarded against its own inputs (None
    without a bi-encoder). Returns (fusion choice, scoring precision)."""
    from crossrank.model.backends.selection import fidelity_warnings
    from crossrank.model.fusion import FusedReranker
    from crossrank.training.datasets import build_evaluator
    from crossrank.workflows.scoring_precision import FidelityBar, ScoringPrecision, choose_scoring_precision

    print("[2/5] scoring the tune split: the evaluation sets' precision and score fusion")
    tune_eval = build_evaluator(tc.eval, name="tune")
    tune_cands = tune_eval.candidate_lists()
    tune_scored, _ = score_candidates(tune_cands, model, dense)
    tune_qrels = {q: tune_eval.qrels[q] for q in tune_eval.candidates if q in tune_eval.qrels}
    bar = FidelityBar(max_ndcg_diff=cfg.scoring_max_ndcg_diff)
    scoring = (choose_scoring_precision(model, tune_cands, tune_scored.scores["cross_encoder"], tune_qrels, bar)
               if cfg.scoring_precision == "auto" else ScoringPrecision(cfg.scoring_precision, "set in the config"))
    with fidelity_warnings(False):
        model.set_backend(scoring.backend, scoring.precision)
    print(f"      cross-encoder scoring: {scoring.backend} {scoring.precision} ({scoring.reason})", flush=True)
    if dense is None:
        return None, scoring
    choice = tune_fusion(tune_scored, tune_qrels, cfg.fusion_min_gain)
    FusedReranker(model, dense, choice.weights, choice.feedback, choice=choice).save_weights(cfg.output / "model")
    print(f"      {choice.reason}; weights {asdict(choice.weights)}, feedback {asdict(choice.feedback)}")
    return choice, scoring


def dl19_step(cfg: QuickstartConfig, model, dense, choice, results: Results) -> None:
    """3. TREC DL19: the BM25 top-`dl19_depth` reranked."""
    from crossrank.data import load_qrels
    from crossrank.data.candidates import from_run

    print(f"[3/5] reranking TREC DL19 BM25 top-{cfg.dl19_depth}")
    dl19 = cfg.data / "trec-dl19"
    cands = list(from_run(dl19 / "runs" / "run.dl19.bm25.top100.trec", dl19 / "collection.tsv", dl19 / "queries.dl19.tsv", cfg.dl19_depth))
    scored, results.speeds["TREC DL19"] = score_candidates(cands, model, dense)
    results.add("TREC DL19", dataset_runs(scored, choice), load_qrels(dl19 / "qrels.dl19-passage.txt"), level=2)


def scifact_step(cfg: QuickstartConfig, model, dense, choice, results: Results) -> None:
    """4. SciFact, out of domain: BM25 over the whole corpus, the top-`scifact_depth` reranked at the training length."""
    from crossrank.data import Collection, iter_corpus, iter_queries, load_qrels
    from crossrank.data.candidates import Candidates
    from crossrank.retrieval import BM25Index

    how = f", {cfg.window_keep} windows of {cfg.window_size} tokens per passage" if cfg.window_keep else ""
    print(f"[4/5] SciFact: BM25 over the whole corpus, reranking the top-{cfg.scifact_depth}{how}")
    sf = cfg.data / "scifact"
    qrels = load_qrels(sf / "qrels" / "test.tsv")
    queries = [q for q in iter_queries(sf / "queries.jsonl") if q.query_id in qrels]
    passages = list(iter_corpus(sf / "corpus.jsonl"))
    bm25 = BM25Index.build(passages, show_progress=False).search(queries, k=cfg.scifact_depth, show_progress=False)
    texts = Collection.from_passages(passages)
    qtext = {q.query_id: q.text for q in queries}
    cands = [Candidates(q, qtext[q], list(docs), [texts[d] for d in docs], list(docs.values())) for q, docs in bm25.items()]
    model.max_length = min(model.max_length, cfg.scifact_max_length)
    scored, results.speeds["SciFact"] = score_candidates(cands, model, dense, window=long_passage_windows(cfg))
    results.add("SciFact", dataset_runs(scored, choice), qrels, level=1)


def long_passage_windows(cfg: QuickstartConfig):
    """How the out-of-domain sets' long passages are scored: a WindowConfig, or None for truncation."""
    from crossrank.model.windows import WindowConfig

    return WindowConfig(size=cfg.window_size, stride=cfg.window_size, keep=cfg.window_keep) if cfg.window_keep else None


def beir_sets(cfg: QuickstartConfig, model, dense, choice, results: Results) -> None:
    """The small BEIR-layout collections, each reported like SciFact, and their NanoBEIR-style mean nDCG@10 per system."""
    from crossrank.training.beir_sets import beir_candidates, nano_mean

    folders = [cfg.data / f for f in cfg.beir_folders if (cfg.data / f / "corpus.jsonl").exists()]
    absent = [str(cfg.data / f) for f in cfg.beir_folders if cfg.data / f not in folders]
    if absent:
        print(f"      BEIR-layout collections not found, left out of the mean: {', '.join(absent)}")
    if not folders or not cfg.beir_queries:
        return
    # the model scores at the length SciFact left it (the training length): out-of-domain sets alike
    print(f"[5/5] {len(folders)} small BEIR-layout collections: {cfg.beir_queries} test queries each, BM25 top-{cfg.beir_depth} reranked")
    names = []
    for folder in folders:
        found = beir_candidates(folder, split="test", queries_per_set=cfg.beir_queries, depth=cfg.beir_depth)
        candidates = [c for c in found.candidates if c.doc_ids]  # a query BM25 matches nothing in has nothing to rerank
        scored, results.speeds[found.name] = score_candidates(candidates, model, dense, window=long_passage_windows(cfg))
        results.add(found.name, dataset_runs(scored, choice), found.qrels, level=1)
        names.append(found.name)
    results.rows[f"mean of {len(names)} BEIR-layout sets"] = {
        system: {"nDCG@10": nano_mean({n: results.rows[n][system] for n in names})} for system in results.rows[names[0]]}


def summarise(cfg: QuickstartConfig, result, data, choice, results: Results, timings: dict) -> dict:
    windows = long_passage_windows(cfg)
    return {
        "metrics": results.rows, "paired_tests_nDCG@10": {d: {s: {b: {"diff": v[0], "randomization_p": v[1]} for b, v in c.items()}
                                                              for s, c in t.items()} for d, t in results.tests.items()},
        "fusion": None if choice is None else {"weights": asdict(choice.weights), "feedback": asdict(choice.feedback), **choice.record()},
        "precision": result.precision,
        "teacher": None if data is None else {"teacher": data.teacher, "chosen_on_train_split": data.teacher_reason,
                                              "tune_RR@10": data.teacher_tune, "judged_lists": data.judged, "pseudo_lists": data.pseudo,
                                              "pseudo_skipped": data.skipped},
        "training": {"steps": result.global_step, "seconds": round(timings["training_s"], 1), "pairs_per_s": round(result.pairs_per_second, 1),
                     f"best_tune_{cfg.metric_for_best}": result.best_metric},
        "rerank_pairs_per_s": {k: round(v, 1) for k, v in results.speeds.items()},
        "scoring_precision": results.scoring,
        "long_passages": ({"windows": asdict(windows), "sets": "SciFact and the BEIR-layout sets"} if windows else "truncate"),
        "training_symptoms": [sym.name for sym in result.symptoms],
        "total_s": round(timings["total_s"], 1),
    }


def write_outputs(cfg: QuickstartConfig, result, data, choice, results: Results, timings: dict) -> None:
    from crossrank.data import atomic_write
    from crossrank.workflows.report import plot, significance_table, table, write_report

    out = cfg.output
    summary = summarise(cfg, result, data, choice, results, timings)
    with atomic_write(out / "metrics.json") as f:
        f.write(json.dumps(summary, indent=2) + "\n")
    text = table(results.rows, METRICS)
    png = plot(out / "report.png", result.log_history, cfg.metric_for_best,
               {k: v for k, v in results.per_query.items() if k in ("TREC DL19", "SciFact")})
    teacher = [] if data is None else [
        f"- training data: {data.judged} judged train-split lists + {data.pseudo} pseudo-query lists ({data.skipped})",
        f"- teacher: {data.teacher}, chosen on the train split ({data.teacher_reason}); on the tune split: "
        + ", ".join(f"{k} RR@10 {v:.4f}" for k, v in data.teacher_tune.items())]
    write_report(out / "report.md", [
        ("", "# crossrank quickstart report"),
        ("Ranking quality", text),
        ("Paired tests (nDCG@10 difference, randomization p)", significance_table(results.tests)),
        ("Run", "\n".join(teacher + [
            f"- base model: {cfg.base_model}; loss {cfg.loss} {cfg.loss_options}; lr {cfg.learning_rate} (head {cfg.head_learning_rate}); "
            + (f"{cfg.max_steps} steps; " if cfg.max_steps > 0 else f"epochs {cfg.epochs}; ")
            + f"batch {cfg.batch_size} queries x {cfg.num_negatives + 1} passages; max_length {cfg.max_length}; "
            f"frozen: embeddings + {cfg.freeze_layers} layers; precision {result.precision}",
            f"- training: {result.global_step} steps in {timings['training_s']:.0f} s with its data ({result.pairs_per_second:.1f} pairs/s); "
            f"best tune {cfg.metric_for_best} {result.best_metric if result.best_metric is not None else float('nan'):.4f}",
            "- fusion (chosen on the dev600 tune split): " + ("off" if choice is None else
                                                              f"{choice.reason}; {asdict(choice.weights)}, feedback {asdict(choice.feedback)}"),
            "- cross-encoder scoring: " + ", ".join(f"{k} {v:.1f} pairs/s" for k, v in results.speeds.items())
            + "; " + "; ".join(f"{k.replace('_', '-')} in {v['precision']} ({v['reason']})" for k, v in results.scoring.items()),
            f"- total time: {timings['total_s']:.0f} s",
        ])),
        ("Training health", "\n".join([f"- **WARNING** {sym.message()}" for sym in result.symptoms]
                                       or ["- no symptom of collapse, chance-level loss or divergence"])
         + "\n\nData check and precision choice: `training/training_report.md`."),
        ("Plot", f"![training and per-query results]({png.name})"),
    ])
    print("\n" + text + "\n\n" + significance_table(results.tests))
    print(f"\nreport: {out / 'report.md'}  plot: {png}  model: {out / 'model'}")

"""Inference speed: sentence-transformers' CrossEncoder.predict against each crossrank path.

    python benchmarks/bench_inference.py [--pairs 4300] [--rounds 2] [--paths st,torch-fp32,...]

Same model (the all-MiniLM-L6-v2 body with a seeded one-logit head, saved by crossrank, max
length 256), same real pairs (TREC DL19 BM25 top-100, whole queries: --pairs rounds to 100s), one
process, paths alternating round by round. Prints and writes to benchmarks/RESULTS.md:

- pairs/s per round (best and median) and the ratio to sentence-transformers in the same run;
- peak memory of each path: the highest RSS while it scores above the RSS before it started,
  sampled every 5 ms by a psutil thread (tracemalloc misses torch's and ONNX Runtime's native
  buffers; without psutil, the growth of resource.getrusage's ru_maxrss, which only shows new
  process-wide peaks), and the RSS its model added when loaded;
- the fp32 GEMM ceiling measured here: torch.matmul and ONNX Runtime's MatMul on BERT-shaped
  products; pairs/s ceiling = best GFLOP/s / GFLOP per pair, the latter computed from the model
  config and the pairs' real token lengths; and the fraction of it each path reaches;
- whether the ranking agrees: nDCG@10 (qrels, relevance level 2) and top-10 overlap with
  crossrank torch fp32, and the largest score difference from it;
- the host: CPU model, flags (avx512_bf16?), torch's CPU capability, threads, load average.

A busy host (other processes on the cores) lowers every number; read ratios within one run.
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import replace_section  # noqa: E402
# torch-bf16: autocast; torch-bf16w: the weights cast to bf16 once (both forced here; `precision="bf16"` picks one by measurement)
PATHS = ("st", "torch-fp32", "onnx-fp32", "openvino-fp32", "torch-bf16", "torch-bf16w", "openvino-bf16", "torch-int8", "onnx-int8")


# ---------------------------------------------------------------------------------- memory
class PeakRSS:
    """Highest RSS (bytes) seen while the block runs, above the RSS at its start."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak = 0
        self.start = 0
        try:
            import psutil

            self._proc = psutil.Process()
        except ImportError:
            self._proc = None

    def rss(self) -> int:
        if self._proc is not None:
            return self._proc.memory_info().rss
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB; a high-water mark

    def __enter__(self):
        self.start = self.peak = self.rss()
        self._stop = threading.Event()
        if self._proc is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.rss())

    def __exit__(self, *exc):
        self._stop.set()
        if self._proc is not None:
            self._thread.join()
        self.peak = max(self.peak, self.rss())

    @property
    def delta_mib(self) -> float:
        return (self.peak - self.start) / 2**20


# ---------------------------------------------------------------------------------- data and model
def load_pairs(data: Path, n_pairs: int):
    from crossrank.data import load_qrels
    from crossrank.pipeline import from_run

    root = data / "trec-dl19" if (data / "trec-dl19").is_dir() else data
    cands = list(from_run(root / "runs" / "run.dl19.bm25.top100.trec", root / "collection.tsv", root / "queries.dl19.tsv", 100))
    n_queries = max(1, min(len(cands), round(n_pairs / 100)))
    cands = cands[:n_queries]
    return cands, load_qrels(root / "qrels.dl19-passage.txt")


def model_folder(max_length: int, model: Path | None = None) -> Path:
    """The model both libraries read, saved once under the cache: a copy of `model` (a trained
    cross-encoder: its scores make the fidelity columns meaningful; ONNX exports go beside the
    copy), else the MiniLM body with crossrank's seeded head."""
    from crossrank import CrossEncoder
    from crossrank.model import minilm_path
    from crossrank.model.backends.base import cache_dir

    name = f"{model.resolve().parent.name}-{model.name}" if model else "minilm-ce"
    folder = cache_dir() / "bench" / f"{name}-{max_length}"
    if not (folder / "model.safetensors").exists():
        CrossEncoder(model or minilm_path(), max_length=max_length).save(folder)
    return folder


def flops_per_pair(config, lengths: np.ndarray) -> np.ndarray:
    """Forward FLOPs of each pair: per layer and token, Q/K/V/O (4 x 2h^2) and the FFN (2 x 2hi),
    plus attention scores and mixing (2 x 2Lh per token); the head's few FLOPs are left out."""
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    L = lengths.astype(np.float64)
    return layers * (L * (8 * h * h + 4 * h * i) + 4 * L * L * h)


# ---------------------------------------------------------------------------------- ceilings
SHAPES = ((4096, 384, 1536), (4096, 1536, 384), (2048, 2048, 2048))


def torch_gemm_gflops(reps: int = 5) -> float:
    import torch

    best = 0.0
    for m, k, n in SHAPES:
        a, b = torch.randn(m, k), torch.randn(k, n)
        a @ b
        t = min(_timed(lambda: a @ b) for _ in range(reps))
        best = max(best, 2 * m * k * n / t / 1e9)
    return best


def ort_gemm_gflops(reps: int = 5) -> float | None:
    try:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    import torch

    best = 0.0
    for m, k, n in SHAPES:
        weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((k, n)).astype(np.float32), "B")
        graph = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["Y"])], "gemm",
                                  [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])],
                                  [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])], [weight])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        a = np.random.default_rng(1).standard_normal((m, k)).astype(np.float32)
        session.run(None, {"A": a})
        t = min(_timed(lambda: session.run(None, {"A": a})) for _ in range(reps))
        best = max(best, 2 * m * k * n / t / 1e9)
    return best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------- paths
@dataclass
class Path_:
    name: str
    label: str
    predict: object
    load_mib: float
    note: str = ""
    speeds: list[float] = field(default_factory=list)
    peak_mib: float = 0.0
    scores: np.ndarray | None = None


def build_paths(names, folder: Path, note_log) -> list[Path_]:
    from crossrank import CrossEncoder
    from crossrank.model.backends import TorchBackend
    from crossrank.model.backends.selection import ensure_export, fidelity_warnings

    built = []
    for name in names:
        with PeakRSS() as mem:
            if name == "st":
                from sentence_transformers import CrossEncoder as STCrossEncoder

                st = STCrossEncoder(str(folder), device="cpu")
                import sentence_transformers

                path = Path_(name, f"sentence-transformers {sentence_transformers.__version__} predict (batch 32)",
                             lambda pairs, st=st: st.predict(pairs, batch_size=32, show_progress_bar=False), 0.0)
            else:
                backend, precision = name.split("-")
                weights = precision == "bf16w"
                precision = precision.removesuffix("w")
                with fidelity_warnings(False):
                    ce = CrossEncoder(folder, device="cpu", backend="torch", precision="fp32")
                    if backend == "onnx":
                        ensure_export(ce, precision)
                    ce.set_backend(backend, precision)
                    if backend == "torch" and precision == "bf16" and ce.precision == "bf16":  # the variant this path names, not the measured choice
                        ce.inference_backend = TorchBackend(ce.model, ce.device, "bf16", bf16_weights=weights)
                if ce.precision != precision:
                    note_log.append(f"{name}: not run ({ce.inference_backend.reason})")
                    continue
                how = {"torch-bf16": " autocast", "torch-bf16w": " (weights cast once)"}.get(name, "")
                path = Path_(name, f"crossrank {backend} {precision}{how}", lambda pairs, ce=ce: ce.predict(pairs, show_progress_bar=False), 0.0)
        path.load_mib = mem.delta_mib
        built.append(path)
    return built


# ---------------------------------------------------------------------------------- report
def host_lines(folder: Path | None = None) -> list[str]:
    import torch

    from crossrank import CrossEncoder
    from crossrank.model.backends import cpu_info, model_bf16_speedup

    info = cpu_info()
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    return [
        f"- CPU: {info['cpu']} ({os.cpu_count()} logical CPUs), flags: {', '.join(info['flags']) or 'none of interest'}; "
        f"avx512_bf16: {'yes' if 'avx512_bf16' in info['flags'] else 'no'}",
        f"- torch {torch.__version__}, CPU capability {info['torch_capability']}, {info['threads']} threads; "
        f"bf16 autocast speed-up of this model's forward pass measured here (16 x 128 tokens): "
        f"{model_bf16_speedup(CrossEncoder(folder or model_folder(256), backend='torch')):.2f}x",
        f"- Python {platform.python_version()}, load average at start: {load}",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=4300, help="DL19 pairs (whole queries of 100; default all 4,300)")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds, paths alternating (default 2)")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, from {', '.join(PATHS)}")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("CROSSRANK_DATA", REPO.parent / "shared" / "data")))
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--model", type=Path, help="a trained cross-encoder folder (default: MiniLM with a new seeded head, "
                        "whose near-random scores make the agreement columns uninformative)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "RESULTS.md", help="markdown report ('-' for none)")
    parser.add_argument("--profile", action="store_true", help="add the op profile of the OpenVINO paths (benchmarks/op_profile.py)")
    parser.add_argument("--budgets", default="", help="also time crossrank torch/onnx fp32 at these max_tokens_per_batch "
                        "values, e.g. 1024,2048,4096,8192 (how DEFAULT_MAX_TOKENS was chosen)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    names = [n.strip() for n in args.paths.split(",") if n.strip()]
    unknown = sorted(set(names) - set(PATHS))
    if unknown:
        parser.error(f"unknown path(s) {', '.join(unknown)}; known: {', '.join(PATHS)}")

    folder = model_folder(args.max_length, args.model)
    host = host_lines(folder)
    print("\n".join(host))
    cands, qrels = load_pairs(args.data, args.pairs)
    pairs = [(c.query, t) for c in cands for t in c.texts]
    notes: list[str] = []
    paths = build_paths(names, folder, notes)

    from transformers import AutoConfig

    from crossrank import CrossEncoder

    probe = CrossEncoder(folder, backend="torch")
    lengths = probe.tokenize([q for q, _ in pairs], [p for _, p in pairs]).lengths
    gflop_pair = float(flops_per_pair(AutoConfig.from_pretrained(folder), lengths).mean() / 1e9)
    auto = CrossEncoder(folder)
    print(f"{len(pairs)} pairs from {len(cands)} queries, mean {lengths.mean():.1f} tokens, {gflop_pair:.2f} GFLOP per pair; "
          f"CrossEncoder(folder) picks {auto.backend} {auto.precision} here ({auto.inference_backend.reason})")
    del auto, probe

    # the ceiling is measured before the rounds and after each one, best kept: on a shared host
    # the load can change during a run, and a ceiling taken under load alone would flatter the paths
    ceilings = [(torch_gemm_gflops(), ort_gemm_gflops())]
    print(f"fp32 GEMM: torch {ceilings[-1][0]:.0f} GFLOP/s, ONNX Runtime {ceilings[-1][1] or float('nan'):.0f} GFLOP/s")

    for p in paths:  # warm-up: kernel selection, first-run allocations
        p.predict(pairs[:64])
    for r in range(args.rounds):
        for p in paths:
            with PeakRSS() as mem:
                start = time.perf_counter()
                scores = np.asarray(p.predict(pairs), dtype=np.float32)
                seconds = time.perf_counter() - start
            p.speeds.append(len(pairs) / seconds)
            p.peak_mib = max(p.peak_mib, mem.delta_mib)
            p.scores = scores
            print(f"round {r + 1}: {p.name:<11} {p.speeds[-1]:7.1f} pairs/s  peak +{mem.delta_mib:.0f} MiB")
        ceilings.append((torch_gemm_gflops(), ort_gemm_gflops()))
        print(f"fp32 GEMM: torch {ceilings[-1][0]:.0f} GFLOP/s, ONNX Runtime {ceilings[-1][1] or float('nan'):.0f} GFLOP/s")
    torch_gemm = max(c[0] for c in ceilings)
    ort_gemm = max((c[1] for c in ceilings if c[1]), default=None)
    ceiling_pairs = max(torch_gemm, ort_gemm or 0.0) / gflop_pair
    print(f"fp32 GEMM ceiling (best of {len(ceilings)} measurements): torch {torch_gemm:.0f}, ONNX Runtime "
          f"{ort_gemm or float('nan'):.0f} GFLOP/s -> {ceiling_pairs:.0f} pairs/s")

    from crossrank.workflows.fidelity import compare_runs

    def as_run(scores):
        run, i = {}, 0
        for c in cands:
            run[c.query_id] = {d: float(s) for d, s in zip(c.doc_ids, scores[i : i + len(c)])}
            i += len(c)
        return run

    ref = next((p for p in paths if p.name == "torch-fp32"), paths[0])
    st = next((p for p in paths if p.name == "st"), None)
    st_best = max(st.speeds) if st else None
    rows = []
    for p in paths:
        ndcg_ref, ndcg, overlap = compare_runs(as_run(ref.scores), as_run(p.scores), qrels)
        best = max(p.speeds)
        rows.append([
            p.label, f"{best:.1f}", f"{statistics.median(p.speeds):.1f}",
            f"{best / st_best:.2f}x" if st_best else "-", f"{best / ceiling_pairs:.0%}",
            f"{p.peak_mib:.0f}", f"{p.load_mib:.0f}", f"{ndcg:.4f}", f"{overlap:.3f}",
            f"{np.abs(p.scores - ref.scores).max():.1e}",
        ])
    header = ["path", "pairs/s best", "median", "vs ST", "of fp32 ceiling", "peak MiB scoring", "MiB model load",
              "nDCG@10", f"top-10 overlap vs {ref.name}", f"max abs score diff vs {ref.name}"]
    table = [_md_row(header), _md_row(["---"] * len(header))] + [_md_row(r) for r in rows]
    print("\n".join(table))
    if args.profile:
        from op_profile import profile_lines

        profile = profile_lines(folder, pairs, args.max_length)
        notes += profile
        print("\n".join(profile))
    if args.output != Path("-"):
        write_report(args.output, host, pairs, cands, lengths, gflop_pair, torch_gemm, ort_gemm, ceiling_pairs, table, notes, args)
        print(f"wrote {args.output}")
    if args.budgets:
        budget_sweep(args, host, pairs, folder, [int(b) for b in args.budgets.split(",")])
    return 0


def budget_sweep(args, host, pairs, folder: Path, budgets: list[int]) -> None:
    """pairs/s of crossrank torch and onnx fp32 per token budget (rounds alternate budgets)."""
    from crossrank import CrossEncoder
    from crossrank.model.backends import onnx_available

    models = {"torch fp32": CrossEncoder(folder, device="cpu", backend="torch")}
    if onnx_available():
        models["onnx fp32"] = CrossEncoder(folder, device="cpu", backend="onnx")
    speeds = {(m, b): [] for m in models for b in budgets}
    for _ in range(args.rounds):
        for m, ce in models.items():
            for b in budgets:
                start = time.perf_counter()
                ce.predict(pairs, max_tokens_per_batch=b, show_progress_bar=False)
                speeds[m, b].append(len(pairs) / (time.perf_counter() - start))
    header = ["path"] + [f"{b} tokens" for b in budgets]
    rows = [_md_row(header), _md_row(["---"] * len(header))]
    rows += [_md_row([m] + [f"{max(speeds[m, b]):.1f}" for b in budgets]) for m in models]
    print("\n".join(rows))
    if args.output != Path("-"):
        body = ["## Token budget (max_tokens_per_batch), pairs/s, best of rounds", "",
                f"`--pairs {args.pairs} --rounds {args.rounds} --budgets {args.budgets}` on {time.strftime('%Y-%m-%d %H:%M')}.", "",
                *host, "", *rows]
        replace_section(args.output, "token-budget", "\n".join(body))


def _md_row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def write_report(path: Path, host, pairs, cands, lengths, gflop_pair, torch_gemm, ort_gemm, ceiling_pairs, table, notes, args) -> None:
    ort = f"{ort_gemm:.0f}" if ort_gemm else "n/a (onnxruntime not installed)"
    text = [
        f"## Inference on {host_kind()}: sentence-transformers vs crossrank paths",
        "",
        f"`python benchmarks/bench_inference.py --pairs {args.pairs} --rounds {args.rounds} --max-length {args.max_length}"
        f"{' --model MODEL' if args.model else ''}{' --profile' if args.profile else ''}` on {time.strftime('%Y-%m-%d %H:%M')}"
        f"{' (MODEL: a trained cross-encoder)' if args.model else ''}.",
        "",
        *host,
        "",
        f"{len(pairs)} TREC DL19 BM25 top-100 pairs ({len(cands)} queries), mean {lengths.mean():.1f} tokens, "
        f"max length {args.max_length}; {gflop_pair:.2f} GFLOP per pair (from the model config and the real lengths).",
        f"fp32 GEMM ceiling on this host (best of the measurements before and after each round): torch matmul "
        f"{torch_gemm:.0f} GFLOP/s, ONNX Runtime MatMul {ort} GFLOP/s -> {ceiling_pairs:.0f} pairs/s.",
        "",
        *table,
        "",
        "Peak MiB: highest RSS while scoring above the RSS before (psutil, sampled every 5 ms). "
        "Rounds alternate between paths; 'best' is the best round.",
        *[f"- {n}" for n in notes],
        "",
    ]
    replace_section(path, f"inference {host_kind()}", "\n".join(text))


def host_kind() -> str:
    """The kind of host a table holds for (RESULTS.md keeps one per kind): vendor and bf16 hardware."""
    from crossrank.model.backends import cpu_info

    info = cpu_info()
    flags = set(info["flags"])
    vendor = next((v for v in ("Intel", "AMD") if v.lower() in info["cpu"].lower()), "CPU")
    isa = ("AMX" if "amx_bf16" in flags else "AVX512-BF16" if "avx512_bf16" in flags else "AVX-512" if "avx512f" in flags
           else "AVX2" if "avx2" in flags else "no AVX2")
    return f"{vendor} {isa}"


if __name__ == "__main__":
    sys.exit(main())

"""The quickstart's report: a terminal table, report.md and a PNG of training and per-query results."""
from __future__ import annotations

from pathlib import Path

from crossrank.data import atomic_write

REPORT_METRICS = ("nDCG@10", "RR@10", "AP", "R@10")


def table(rows: dict[str, dict[str, dict[str, float]]], metrics=REPORT_METRICS) -> str:
    """rows: dataset -> system -> metrics; a Markdown table, also readable in a terminal."""
    head = "| dataset | system | " + " | ".join(metrics) + " |"
    lines = [head, "|" + "---|" * (len(metrics) + 2)]
    for dataset, systems in rows.items():
        for system, values in systems.items():
            cells = " | ".join(f"{values[m]:.4f}" if m in values else "-" for m in metrics)
            lines.append(f"| {dataset} | {system} | {cells} |")
    return "\n".join(lines)


def significance_table(tests: dict[str, dict[str, dict[str, tuple[float, float]]]], metric: str = "nDCG@10",
                       order: tuple[str, ...] = ("BM25", "bi-encoder")) -> str:
    """tests: dataset -> system -> baseline -> (difference, paired randomization p); a Markdown table.

    A cell reads "+0.0312 (p 0.004)": the system's mean minus the baseline's, and the two-sided p of the
    paired randomization test (`crossrank.evaluation.compare`, as `crossrank compare` prints it)."""
    found = set(b for systems in tests.values() for cells in systems.values() for b in cells)
    baselines = [b for b in order if b in found] + sorted(found - set(order))
    lines = ["| dataset | system | " + " | ".join(f"{metric} vs {b}" for b in baselines) + " |", "|" + "---|" * (len(baselines) + 2)]
    for dataset, systems in tests.items():
        for system, cells in systems.items():
            row = [f"{cells[b][0]:+.4f} (p {cells[b][1]:.3f})" if b in cells else "-" for b in baselines]
            lines.append(f"| {dataset} | {system} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def paired_tests(qrels, runs: dict[str, dict], baselines: tuple[str, ...], metric: str = "nDCG@10",
                 relevance_level: int = 1) -> dict[str, dict[str, tuple[float, float]]]:
    """Each run that is not a baseline against each baseline: system -> baseline -> (difference, randomization p)."""
    from crossrank.evaluation import compare

    missing = [b for b in baselines if b not in runs]
    if missing:
        raise ValueError(f"paired_tests expects every baseline among the runs, but {missing} are not in {sorted(runs)}")
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for system, run in runs.items():
        for base in baselines:
            if base == system:
                continue
            result = compare(qrels, runs[base], run, metrics=[metric], relevance_level=relevance_level)[metric]
            out.setdefault(system, {})[base] = (result.diff, result.randomization_p)
    return out


def write_report(path: Path, sections: list[tuple[str, str]]) -> Path:
    text = "\n\n".join(f"## {title}\n\n{body}" if title else body for title, body in sections) + "\n"
    with atomic_write(path) as f:
        f.write(text)
    return path


def plot(path: Path, log_history: list[dict], metric: str, per_query: dict[str, tuple[dict, dict]]) -> Path:
    """Training loss and the evaluation metric by step; per-query nDCG@10 of BM25 vs reranked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("the quickstart plot needs matplotlib: pip install 'crossrank[report]'") from exc
    panels = 2 + len(per_query)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4))
    steps = [h["step"] for h in log_history if "loss" in h]
    axes[0].plot(steps, [h["loss"] for h in log_history if "loss" in h], color="tab:blue")
    axes[0].set(title="training loss", xlabel="step", ylabel="loss")
    key = f"eval_{metric}"
    evals = [h for h in log_history if key in h]
    axes[1].plot([h["step"] for h in evals], [h[key] for h in evals], marker="o", color="tab:green")
    axes[1].set(title=f"tune split {metric}", xlabel="step", ylabel=metric)
    for ax, (name, (before, after)) in zip(axes[2:], per_query.items()):
        qids = sorted(before)
        ax.scatter([before[q] for q in qids], [after.get(q, 0.0) for q in qids], s=12)
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
        ax.set(title=f"{name}: nDCG@10 per query", xlabel="BM25", ylabel="crossrank", xlim=(0, 1), ylim=(0, 1))
    fig.tight_layout()
    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png", dpi=100)
    finally:
        plt.close(fig)
    return path

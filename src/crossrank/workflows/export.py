"""`export_model`: what `crossrank export` does, as one library call.

Exports the ONNX file(s) beside the model, measures torch vs ONNX fp32 on this host (the number
backend="auto" decides by), and with a fidelity config runs the fidelity check and records it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from crossrank.model.backends.fidelity_records import record_path
from crossrank.model.backends.onnx_backend import OnnxBackend, require_onnxruntime
from crossrank.model.backends.selection import ensure_export, fidelity_warnings, onnx_timings, openvino_speedup
from crossrank.model import CrossEncoder
from crossrank.workflows.fidelity import FidelityConfig, FidelityReport, check_fidelity


@dataclass
class ExportConfig:
    model: str | os.PathLike
    precision: str = "fp32"  # fp32 / int8 (onnx, torch); bf16 (torch: nothing to export, check only; openvino)
    backend: str = "onnx"
    force: bool = False  # export again even when a current export is there
    max_length: int | None = None
    check: FidelityConfig | None = None  # run the fidelity check with this config

    def __post_init__(self) -> None:
        from crossrank.data.ranges import Range, check_ranges

        check_ranges("export", self, {"max_length": Range(1, integer=True, optional=True)})


@dataclass
class ExportResult:
    files: list[Path] = field(default_factory=list)
    timings: dict | None = None  # onnx: torch_fp32 / onnx_fp32 pairs/s; openvino: openvino_fp32_vs_torch (x torch fp32) on this host
    default_backend: str | None = None  # what CrossEncoder(model) now picks on this host
    report: FidelityReport | None = None
    record: Path | None = None
    reports: list[FidelityReport] = field(default_factory=list)  # --precision all: one per lossy path checked
    skipped: list[str] = field(default_factory=list)  # --precision all: the lossy paths this host cannot run, and why


#: every lossy path, fastest-looking first; `--precision all --check` checks those this host runs
LOSSY_PATHS = (("openvino", "bf16"), ("torch", "bf16"), ("onnx", "int8"), ("torch", "int8"))


def export_model(config: ExportConfig) -> ExportResult:
    """Export (and time, and with `config.check` check and record) the model at `config.model`;
    precision "all" checks and records every lossy path this host runs (what precision="fastest" reads)."""
    if config.precision == "all":
        return check_all(config)
    if config.backend not in ("onnx", "torch", "openvino"):
        raise ValueError(f"--backend must be onnx, torch or openvino, but got {config.backend!r}")
    allowed = {"onnx": ("fp32", "int8"), "openvino": ("fp32", "bf16")}.get(config.backend, ("fp32", "bf16", "int8"))
    if config.precision not in allowed:
        raise ValueError(f"the {config.backend} backend takes --precision {' or '.join(allowed)}, but got {config.precision!r}")
    if config.backend == "onnx":
        require_onnxruntime()
    result = ExportResult()
    with fidelity_warnings(False):
        ce = CrossEncoder(config.model, max_length=config.max_length, device="cpu", backend="torch", precision="fp32")
    if config.backend == "onnx":
        fp32 = ensure_export(ce, "fp32", force=config.force)
        result.files.append(fp32)
        if config.precision == "int8":
            result.files.append(ensure_export(ce, "int8", force=config.force))
        result.timings = onnx_timings(ce, OnnxBackend(fp32, "fp32", source=ce.model), refresh=True)
        ce.set_backend(None, None)
        result.default_backend = ce.backend
    if config.backend == "openvino":  # converted (or found current) now, so that scoring with it loads at once
        with fidelity_warnings(False), ce.using_backend("openvino", config.precision) as converted:
            result.files.append(converted.folder / "model.xml")
        # the number backend="auto" decides fp32 by, measured again now
        result.timings = {"openvino_fp32_vs_torch": round(openvino_speedup(ce, "fp32", refresh=True), 2)}
        ce.set_backend(None, None)
        result.default_backend = ce.backend
    if config.check is not None:
        result.report = check_fidelity(ce, config.backend, config.precision, config.check, record=True)
        result.record = record_path(ce.path)
    return result


def default_dl19_dir(data: str | os.PathLike | None = None) -> Path:
    """--data as given (the trec-dl19 folder or the folder holding it), else $CROSSRANK_DATA, else ./data."""
    root = Path(data) if data else Path(os.environ.get("CROSSRANK_DATA", "data"))
    return root / "trec-dl19" if (root / "trec-dl19").is_dir() else root


def check_all(config: ExportConfig) -> ExportResult:
    """The fidelity check of every lossy path in `LOSSY_PATHS` that this host runs, each recorded."""
    from crossrank.model.backends import onnx_available, openvino_available
    from crossrank.model.backends.openvino_backend import openvino_bf16_supported

    if config.check is None:
        raise ValueError("--precision all checks every lossy path: it needs --check")
    result = ExportResult()
    with fidelity_warnings(False):
        ce = CrossEncoder(config.model, max_length=config.max_length, device="cpu", backend="torch", precision="fp32")
    missing = {"onnx": (onnx_available, "onnxruntime not installed: `pip install crossrank[onnx]`"),
               "openvino": (openvino_available, "openvino not installed: `pip install crossrank[openvino]`")}
    for backend, precision in LOSSY_PATHS:
        available, why = missing.get(backend, (lambda: True, ""))
        if not available():
            result.skipped.append(f"{backend} {precision}: {why}")
            continue
        if backend == "openvino" and not openvino_bf16_supported():
            result.skipped.append(f"{backend} {precision}: this CPU has no native bf16 for OpenVINO")
            continue
        if backend == "onnx":
            result.files.append(ensure_export(ce, precision, force=config.force))
        with fidelity_warnings(False), ce.using_backend(backend, precision) as runs:
            if runs.precision != precision:  # torch bf16 where the host measured it slower than fp32
                result.skipped.append(f"{backend} {precision}: {runs.reason}")
                continue
        result.reports.append(check_fidelity(ce, backend, precision, config.check, record=True))
    result.record = record_path(ce.path)
    return result

"""The ONNX Runtime backend (CPU): fp32 and dynamic int8 exports, cached beside the model.

    MODEL/onnx/model.onnx        fp32, exported from the CrossEncoder's torch module
    MODEL/onnx/model_int8.onnx   dynamic int8 (onnxruntime.quantization.quantize_dynamic) of it
    MODEL/onnx/export.json       which weights each file was made from (a sha256 of the state
                                 dict), so a stale export is made again instead of used
    MODEL/onnx/timings.json      torch fp32 vs ONNX fp32 pairs/s per host (for backend="auto")

When MODEL cannot be written (a read-only hub cache), the folder is
$CROSSRANK_CACHE/onnx/<hash of MODEL's path> instead. Needs `pip install crossrank[onnx]`.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from crossrank.data.atomic import atomic_dir
from crossrank.model.backends.base import Backend, model_subdir, random_batch, read_json, update_json, weights_version, writable_dir
from crossrank.model.batching import DEFAULT_MAX_TOKENS

logger = logging.getLogger(__name__)

FILES = {"fp32": "model.onnx", "int8": "model_int8.onnx"}
EXPORT_RECORD = "export.json"
OPSET = 17
INSTALL_HINT = "pip install crossrank[onnx]"


def require_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(f"the ONNX backend needs onnxruntime and onnx: `{INSTALL_HINT}`") from exc
    return onnxruntime


def onnx_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def onnx_dir(model_path: str | os.PathLike) -> Path:
    """MODEL/onnx, or a per-model folder in the user cache when MODEL cannot be written."""
    return model_subdir(model_path, "onnx")


def current_export(folder: Path, precision: str, fingerprint: str) -> Path | None:
    """The export of `precision` in `folder` made from the weights with `fingerprint`, if any."""
    path = folder / FILES[precision]
    entry = read_json(folder / EXPORT_RECORD).get(precision) or {}
    if path.exists() and entry.get("fingerprint") == fingerprint:
        return path
    return None


def export_onnx(model: torch.nn.Module, folder: str | os.PathLike, fingerprint: str, precision: str = "fp32",
                input_names: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids"), force: bool = False) -> Path:
    """Export `model` (fp32 weights) to `folder` as `precision` ("fp32" or "int8"), unless a current
    export is there already; returns the file. int8 quantises the fp32 export (made first if needed)."""
    if precision not in FILES:
        raise ValueError(f"ONNX exports are fp32 or int8, but got {precision!r}")
    require_onnxruntime()
    folder = Path(folder)
    if not writable_dir(folder):
        raise PermissionError(f"{folder}: cannot write the ONNX export there (set CROSSRANK_CACHE to a writable folder)")
    found = None if force else current_export(folder, precision, fingerprint)
    if found is not None:
        return found
    start = time.perf_counter()
    if precision == "fp32":
        _export_fp32(model, folder, input_names)
        source = None
    else:
        fp32 = export_onnx(model, folder, fingerprint, "fp32", input_names, force=force)
        _quantize_int8(fp32, folder / FILES["int8"])
        source = FILES["fp32"]
    update_json(folder / EXPORT_RECORD, precision, {
        "file": FILES[precision], "fingerprint": fingerprint, "source": source, "opset": OPSET,
        "inputs": list(input_names), "torch": torch.__version__, "onnxruntime": require_onnxruntime().__version__,
        "seconds": round(time.perf_counter() - start, 2),
    })
    logger.info("exported %s ONNX model to %s (%.1f s)", precision, folder / FILES[precision], time.perf_counter() - start)
    return folder / FILES[precision]


class _Named(torch.nn.Module):
    """Positional ONNX inputs -> the model's keyword inputs; returns the logits only."""

    def __init__(self, model: torch.nn.Module, names: tuple[str, ...]):
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *args):
        return self.model(**dict(zip(self.names, args))).logits


def _dummy_inputs(model: torch.nn.Module, names: tuple[str, ...]) -> tuple[torch.Tensor, ...]:
    # two rows, the second padded: the traced graph must keep the attention mask's path
    values = random_batch(model, 2, 16, token_types=True)
    values["attention_mask"][1, 9:] = 0
    return tuple(torch.from_numpy(values[n]) for n in names)


def _export_fp32(model: torch.nn.Module, folder: Path, names: tuple[str, ...]) -> None:
    if next(model.parameters()).dtype != torch.float32:
        raise ValueError("ONNX export needs the model's fp32 weights; load it without dtype=")
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    try:
        # the .onnx file and any external-data file (models over 2 GB) are moved into `folder` on success
        with atomic_dir(folder, merge=True, label="export") as tmp:
            wrapper = _Named(model, names)
            args = tuple(t.to(device) for t in _dummy_inputs(model, names))
            axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notices
                torch.onnx.export(wrapper, args, str(tmp / FILES["fp32"]), input_names=list(names), output_names=["logits"],
                                  dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True, dynamo=False)
    finally:
        model.train(was_training)


def _quantize_int8(fp32: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fp32), load_external_data=False)
    # MatMuls only: embeddings (Gather), the pooler and the classifier (Gemm) stay fp32
    matmuls = [n.name for n in graph.graph.node if n.op_type == "MatMul"]
    if not matmuls:
        raise ValueError(f"{fp32}: no MatMul to quantise")
    fd, tmp = tempfile.mkstemp(prefix=".int8-", suffix=".onnx", dir=target.parent)
    os.close(fd)
    try:
        root = logging.getLogger()
        # the quantiser logs to the root logger: a line per skipped tensor, and a "pre-process first" notice
        notice = _QuietQuantizer()
        root.addFilter(notice)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_dynamic(str(fp32), tmp, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"],
                                 extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        finally:
            root.removeFilter(notice)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class _QuietQuantizer(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and "pre-processing before quantization" not in record.getMessage()


class OnnxBackend(Backend):
    """Runs an exported model with ONNX Runtime's CPU kernels (MLAS)."""

    name = "onnx"
    default_max_tokens = DEFAULT_MAX_TOKENS["onnx"]

    def __init__(self, path: str | os.PathLike, precision: str, source: torch.nn.Module | None = None, threads: int | None = None):
        ort = require_onnxruntime()
        self.path = Path(path)
        self.precision = precision
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.ort_session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.ort_session.get_inputs()]
        self.source = source
        self._version = weights_version(source) if source is not None else None

    @property
    def lossy(self) -> bool:
        return self.precision == "int8"

    def run(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        logits = self.ort_session.run(None, {n: arrays[n] for n in self.input_names})[0]
        logits = np.asarray(logits, dtype=np.float32)
        return logits.reshape(len(logits), -1)

"""The OpenVINO backend (CPU): the CrossEncoder's torch module converted with `openvino.convert_model`,
run in f32 (exact within float noise) or bf16 (`INFERENCE_PRECISION_HINT`: lossy, where the CPU has it).

    MODEL/openvino/model.xml, model.bin   the conversion (fp32 weights, dynamic batch and length)
    MODEL/openvino/export.json            the weights it was converted from (a sha256 of the state
                                          dict): a stale conversion is made again, not used

When MODEL cannot be written, the folder is $CROSSRANK_CACHE/openvino/<hash of MODEL's path>.
OpenVINO fuses what torch runs op by op (attention, GELU, layer norms) and keeps bf16 weights: on a
2-core AMD EPYC with AVX512-BF16 (no AMX), 512 DL19 pairs with the quickstart's model ran 87 pairs/s
in f32 and 155 in bf16 against torch's 65 (fp32) and 106 (bf16 autocast). Needs
`pip install crossrank[openvino]`.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from crossrank.data.atomic import atomic_dir
from crossrank.model.backends.base import Backend, model_subdir, random_batch, read_json, update_json, weights_version, writable_dir
from crossrank.model.batching import DEFAULT_MAX_TOKENS

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install crossrank[openvino]"
XML, RECORD = "model.xml", "export.json"
HINTS = {"fp32": "f32", "bf16": "bf16"}


def require_openvino():
    try:
        import openvino
    except ImportError as exc:
        raise ImportError(f"the OpenVINO backend needs the openvino package: `{INSTALL_HINT}`") from exc
    return openvino


def openvino_available() -> bool:
    try:
        require_openvino()
    except ImportError:
        return False
    return True


def openvino_bf16_supported() -> bool:
    """Whether OpenVINO's CPU plugin runs bf16 natively here (AVX512-BF16 or AMX); elsewhere it would run f32."""
    core = require_openvino().Core()
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def openvino_dir(model_path: str | os.PathLike) -> Path:
    return model_subdir(model_path, "openvino")


class _Output(torch.nn.Module):
    """Keyword inputs -> one output of the model (`logits`, `last_hidden_state`): the converted graph's only output."""

    def __init__(self, model: torch.nn.Module, output: str):
        super().__init__()
        self.model = model
        self.output = output

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kwargs = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return getattr(self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs), self.output)


def convert(model: torch.nn.Module, names: tuple[str, ...], output: str = "logits"):
    """`model` (fp32 weights) as an OpenVINO model with dynamic batch and length, its `output` the graph's output."""
    ov = require_openvino()
    if next(model.parameters()).dtype != torch.float32:
        raise ValueError("the OpenVINO conversion needs the model's fp32 weights; load it without dtype=")
    values = random_batch(model, 2, 16, token_types="token_type_ids" in names)
    values["attention_mask"][1, 9:] = 0  # a padded row: the graph keeps the mask's path
    example = {n: torch.from_numpy(values[n]) for n in names}
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's notices
            converted = ov.convert_model(_Output(model, output), example_input=example)
    finally:
        model.train(was_training)
    converted.reshape({p.get_any_name(): ov.PartialShape([-1, -1]) for p in converted.inputs})
    return converted


def has_conversion(folder: Path, fingerprint: str, names: tuple[str, ...]) -> bool:
    """Whether `folder` holds a conversion of exactly these weights with these inputs."""
    entry = read_json(Path(folder) / RECORD).get("conversion") or {}
    return entry.get("fingerprint") == fingerprint and entry.get("inputs") == list(names) and (Path(folder) / XML).exists()


def copy_conversion(source: Path, target: Path, fingerprint: str, names: tuple[str, ...]) -> bool:
    """Copy `source`'s conversion of these weights to `target` (a saved copy of the model keeps it, so
    that backend="auto" finds it there); False where `source` holds none."""
    source, target = Path(source), Path(target)
    if source.resolve() == target.resolve() or not has_conversion(source, fingerprint, names):
        return False
    with atomic_dir(target, merge=True, label="openvino") as tmp:
        for name in (XML, XML.replace(".xml", ".bin"), RECORD):
            shutil.copy2(source / name, tmp / name)
    return True


def load_or_convert(model: torch.nn.Module, folder: Path, fingerprint: str, names: tuple[str, ...]):
    """The conversion of these weights from `folder`, or made now (and saved there when it can be written)."""
    ov = require_openvino()
    if has_conversion(folder, fingerprint, names):
        return ov.Core().read_model(str(folder / XML))
    start = time.perf_counter()
    converted = convert(model, names)
    if writable_dir(folder):
        with atomic_dir(folder, merge=True, label="openvino") as tmp:
            ov.save_model(converted, str(tmp / XML), compress_to_fp16=False)
        update_json(folder / RECORD, "conversion", {"fingerprint": fingerprint, "inputs": list(names), "openvino": ov.__version__,
                                                    "seconds": round(time.perf_counter() - start, 2)})
    logger.info("converted the model to OpenVINO in %.1f s (%s)", time.perf_counter() - start, folder)
    return converted


def check_precision(precision: str) -> None:
    """fp32, or bf16 where OpenVINO runs it natively; a clear error otherwise."""
    if precision not in HINTS:
        raise ValueError(f"the OpenVINO backend runs fp32 or bf16, but got {precision!r}")
    if precision == "bf16" and not openvino_bf16_supported():
        raise ValueError("OpenVINO runs bf16 natively only on CPUs with AVX512-BF16 or AMX, which this host lacks; use fp32")


def compile_cpu(converted, precision: str):
    """(compiled model, infer request) on the CPU plugin at `precision`, one request using every torch thread."""
    ov = require_openvino()
    config = {"INFERENCE_PRECISION_HINT": HINTS[precision], "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_NUM_THREADS": torch.get_num_threads()}
    compiled = ov.Core().compile_model(converted, "CPU", config)
    return compiled, compiled.create_infer_request()


class OpenVINOEncoder:
    """A transformer body converted for OpenVINO in memory (a bi-encoder: not trained here, so never
    stale), called on int64 arrays; returns the last hidden states as float32."""

    def __init__(self, model: torch.nn.Module, names: tuple[str, ...], precision: str = "fp32"):
        check_precision(precision)
        self.names = tuple(names)
        self.compiled, self.request = compile_cpu(convert(model, self.names, "last_hidden_state"), precision)

    def __call__(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        result = self.request.infer({n: np.asarray(arrays[n], dtype=np.int64) for n in self.names})
        return np.asarray(result[self.compiled.output(0)], dtype=np.float32)


class OpenVINOBackend(Backend):
    """Runs the converted model with OpenVINO's CPU plugin; the conversion is made again when the
    torch module's weights change (training), as the torch int8 copy is."""

    name = "openvino"
    default_max_tokens = DEFAULT_MAX_TOKENS["openvino"]

    def __init__(self, model: torch.nn.Module, folder: Path, fingerprint: str, precision: str = "fp32",
                 names: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")):
        check_precision(precision)
        self.source = model
        self.precision = precision
        self.folder = Path(folder)
        self.names = tuple(names)
        self._compile(load_or_convert(model, self.folder, fingerprint, self.names))

    def _compile(self, converted) -> None:
        self.compiled, self.request = compile_cpu(converted, self.precision)
        self._version = weights_version(self.source)

    @property
    def lossy(self) -> bool:
        return self.precision != "fp32"

    def run(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        result = self.request.infer({n: arrays[n] for n in self.names})
        logits = np.asarray(result[self.compiled.output(0)], dtype=np.float32)
        return logits.reshape(len(logits), -1)

    def refresh(self) -> None:
        """Convert the source's current weights again (in memory: the saved conversion stays the trained-from one's)."""
        self._compile(convert(self.source, self.names))

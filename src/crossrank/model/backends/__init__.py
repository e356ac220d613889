"""Inference backends and precisions: `CrossEncoder(path, backend=..., precision=...)`.

| backend | precision | where | exact? |
|---|---|---|---|
| torch | fp32 | CPU, CUDA | yes (the reference) |
| torch | bf16 | CPU: only where it measured >= 1.25x fp32 on this host; autocast, or the weights cast to bf16 once where that measured >= 1.05x autocast (`bf16_weights`) | lossy: fidelity check, per way |
| torch | bf16 / fp16 | CUDA: autocast, logits and activation in fp32 | default on CUDA |
| torch | int8 | CPU: dynamic int8 Linear layers (torch.ao quantize_dynamic), head in fp32 | lossy: fidelity check |
| onnx | fp32 | CPU: ONNX Runtime, export cached in MODEL/onnx/model.onnx | yes (within 1e-4) |
| onnx | int8 | CPU: onnxruntime quantize_dynamic of the MatMuls, MODEL/onnx/model_int8.onnx | lossy: fidelity check |
| openvino | fp32 | CPU: `openvino.convert_model` of the torch module, MODEL/openvino/model.xml (`crossrank[openvino]`) | yes (within 1e-4) |
| openvino | bf16 | CPU with AVX512-BF16 or AMX: the same conversion, `INFERENCE_PRECISION_HINT=bf16` | lossy: fidelity check |

The rules when `backend` / `precision` are left out (None or "auto"):

1. precision: the fastest exact path. CPU: fp32. CUDA: bf16 autocast where the GPU has it, else
   fp16 (scores computed in fp32). A model loaded with `dtype="bf16"|"fp16"` runs in that dtype.
2. backend: CUDA, bf16 and fp16 run on torch. On CPU, fp32 runs on the fastest exact backend this
   host measured: torch; ONNX Runtime fp32 where onnxruntime is installed (`crossrank[onnx]`), an
   export made from exactly these weights is beside the model (`crossrank export --model DIR`) and
   it measured >= 1.10x torch's pairs/s (16 x 128 tokens, cached in MODEL/onnx/timings.json);
   OpenVINO f32 where openvino is installed (`crossrank[openvino]`), a conversion of exactly these
   weights is beside the model (`crossrank export --model DIR --backend openvino`, any earlier
   OpenVINO run, or `save` of a converted model) and it measured >= 1.10x torch (`path_timing`,
   cached in $CROSSRANK_CACHE/precision.json). Nothing is exported or converted implicitly. int8
   runs on ONNX when a current int8 export is there, else on torch.
3. bf16 on CPU is never chosen from a CPU flag: the model's own forward pass is timed in fp32 and
   bf16 once per host kind and model shape (`precision.choose_precision`, cached in
   $CROSSRANK_CACHE/precision.json, default ~/.cache/crossrank); where bf16 autocast is not >= 1.25x
   fp32, asking for bf16 logs a warning and scores in fp32 (exact, and faster there). Where it is,
   autocast and a bf16 copy of the weights are timed against each other the same way
   (`bf16_weights.choose_bf16_variant`) and the faster runs; the backend's `variant` says which.
4. Lossy paths (bf16 on CPU, int8) are trusted through `crossrank export --check` (the check is
   `crossrank.workflows.fidelity`, its records `fidelity_records`): without a passing record for
   these weights, this host kind and this way of running the precision (autocast or bf16 weights),
   loading one logs a warning with the command to run; it does not raise.
5. precision="fastest" (also `crossrank rerank|serve --precision fastest`): of the lossy paths that
   passed `crossrank export --model DIR --precision all --check` for these weights on this host kind
   and can run here, the one whose check measured the highest pairs/s against fp32; the exact
   default where none did (one log line says why). Lossy paths are never taken on trust.
6. OpenVINO bf16 runs only when asked for (`backend="openvino", precision="bf16"`) or chosen by
   precision="fastest"; on a CPU without native bf16 it logs a warning and runs fp32.
7. Impossible combinations raise ValueError: onnx or openvino on CUDA, onnx with bf16/fp16, fp16 on CPU,
   int8 on CUDA, a precision other than the weights' dtype when loaded with `dtype=`.

A backend copy of the weights (torch int8, torch bf16 weights, onnx, openvino) notices when the torch module's weights
change in place (training, load_state_dict): torch int8 quantises again, bf16 weights are cast again, openvino converts
again, onnx falls back to torch.
"""
from crossrank.model.backends.base import BACKENDS, PRECISIONS, Backend, cpu_info, host_key
from crossrank.model.backends.fidelity_records import passing_record
from crossrank.model.backends.onnx_backend import OnnxBackend, onnx_available, onnx_dir, require_onnxruntime
from crossrank.model.backends.openvino_backend import OpenVINOBackend, openvino_available, openvino_dir, require_openvino
from crossrank.model.backends.selection import (
    BF16_MIN_SPEEDUP,
    ONNX_MIN_SPEEDUP,
    model_bf16_speedup,
    create_backend,
    ensure_export,
    onnx_timings,
    time_backends,
)
from crossrank.model.backends.torch_backend import TorchBackend, quantize_int8

__all__ = [
    "BACKENDS",
    "BF16_MIN_SPEEDUP",
    "ONNX_MIN_SPEEDUP",
    "PRECISIONS",
    "Backend",
    "OnnxBackend",
    "OpenVINOBackend",
    "TorchBackend",
    "model_bf16_speedup",
    "cpu_info",
    "create_backend",
    "ensure_export",
    "host_key",
    "onnx_available",
    "onnx_dir",
    "onnx_timings",
    "openvino_available",
    "openvino_dir",
    "passing_record",
    "quantize_int8",
    "require_onnxruntime",
    "require_openvino",
    "time_backends",
]

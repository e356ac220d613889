"""The torch backend: fp32, bf16/fp16 autocast or a bf16 copy of the weights (logits in fp32), dynamic int8 on CPU."""
from __future__ import annotations

import contextlib
import copy
import warnings

import numpy as np
import torch

from crossrank.model.backends.base import Backend, weights_version
from crossrank.model.backends.bf16_weights import cast_bf16
from crossrank.model.batching import DEFAULT_MAX_TOKENS

_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TorchBackend(Backend):
    """Runs the CrossEncoder's own torch module (fp32, bf16, fp16) or a dynamic-int8 copy of it.

    bf16/fp16 use autocast, so weights stay as loaded and softmax, layer norms and the returned
    logits stay fp32; with `bf16_weights` (CPU, where it measures faster: `bf16_weights.choose_bf16_variant`)
    bf16 runs a copy of the model cast to bf16 once instead, logits returned in fp32. A model loaded
    with half weights (`dtype=`) runs as it is. int8 replaces every Linear of a copy with torch's
    dynamic int8 Linear (CPU only). A copy notices when the original's weights change (training)
    and is made again.
    """

    name = "torch"

    def __init__(self, model: torch.nn.Module, device: torch.device, precision: str = "fp32", bf16_weights: bool = False):
        if precision not in ("fp32", "bf16", "fp16", "int8"):
            raise ValueError(f"the torch backend runs fp32, bf16, fp16 or int8, but got {precision!r}")
        if precision == "fp16" and device.type == "cpu":
            raise ValueError("fp16 runs on CUDA only; on CPU use precision='bf16' (where the host is faster with it) or 'int8'")
        if precision == "int8" and device.type != "cpu":
            raise ValueError(f"dynamic int8 runs on CPU only, but the model is on {device}; use bf16 or fp16 there")
        weight_dtype = next(model.parameters()).dtype
        if bf16_weights and (precision != "bf16" or weight_dtype != torch.float32):
            raise ValueError(f"bf16_weights casts fp32 weights for precision='bf16', but got precision={precision!r} "
                             f"with {str(weight_dtype).removeprefix('torch.')} weights")
        self.source = model
        self.device = device
        self.precision = precision
        self.default_max_tokens = DEFAULT_MAX_TOKENS["cuda" if device.type == "cuda" else "cpu"]
        self.bf16_weights = bf16_weights
        self._version = None
        self.module = model
        if precision == "int8" or bf16_weights:
            self.refresh()
        self._autocast = _AUTOCAST.get(precision) if weight_dtype == torch.float32 and not bf16_weights else None

    @property
    def lossy(self) -> bool:
        # half precision on CUDA is the default there (scores in fp32); on CPU it must pass the fidelity check
        return self.precision == "int8" or (self.precision in _AUTOCAST and self.device.type == "cpu")

    @contextlib.contextmanager
    def session(self):
        module = self.module
        was_training = module.training
        module.eval()
        try:
            with contextlib.ExitStack() as stack:
                stack.enter_context(torch.inference_mode())
                if self._autocast is not None:
                    stack.enter_context(torch.autocast(self.device.type, dtype=self._autocast))
                yield
        finally:
            module.train(was_training)

    def run(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        inputs = {k: torch.from_numpy(v).to(self.device, non_blocking=True) for k, v in arrays.items()}
        logits = self.module(**inputs).logits.float()
        return logits.cpu().numpy()

    @property
    def variant(self) -> str:
        return "bf16-weights" if self.bf16_weights else ""

    def describe(self) -> str:
        return f"torch {self.precision}{' (weights cast to bf16 once)' if self.bf16_weights else ''}"

    def refresh(self) -> None:
        """Make the copy again from the source's current weights (int8, bf16 weights; nothing otherwise)."""
        if self.precision == "int8":
            self.module = quantize_int8(self.source)
        elif self.bf16_weights:
            self.module = cast_bf16(self.source)
        else:
            return
        self._version = weights_version(self.source)


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` whose Linear layers compute in int8 (weights per tensor, activations per
    batch), except those of the head (pooler and classifier)."""
    from torch.ao.quantization import quantize_dynamic

    from torch.ao.quantization import default_dynamic_qconfig

    clone = copy.deepcopy(model).to("cpu").float().eval()
    linears = [name for name, m in clone.named_modules() if isinstance(m, torch.nn.Linear)]
    # the head (pooler, classifier: one token per pair, so almost no compute) stays fp32, like the
    # last Linear, which writes the score itself
    keep = {linears[-1]} if linears else set()
    spec = {n: default_dynamic_qconfig for n in linears if n not in keep and "pooler" not in n and "classifier" not in n}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        return quantize_dynamic(clone, spec, dtype=torch.qint8)

"""What every backend shares: the interface, fingerprints of weights and hosts, random inputs to time with, small JSON caches."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from crossrank.data.atomic import atomic_write

BACKENDS = ("torch", "onnx", "openvino")
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
_ALIASES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "qint8": "int8"}


def precision_name(value: str | None) -> str | None:
    if value is None or value == "auto":
        return None
    key = str(value).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in PRECISIONS:
        raise ValueError(f"precision expects one of {', '.join(PRECISIONS)} (or 'auto'), but got {value!r}")
    return key


def backend_name(value: str | None) -> str | None:
    if value is None or value == "auto":
        return None
    key = str(value).strip().lower()
    key = {"onnxruntime": "onnx", "ov": "openvino"}.get(key, key)
    if key not in BACKENDS:
        raise ValueError(f"backend expects one of {', '.join(BACKENDS)} (or 'auto'), but got {value!r}")
    return key


class Backend:
    """Runs a sequence-classification model on padded int64 arrays; returns float32 logits (rows, labels)."""

    name = "?"
    precision = "fp32"
    #: how the precision is run where a backend has more than one way ("" where it has one): it keys fidelity records
    variant = ""
    #: padded tokens per batch when predict is given no budget
    default_max_tokens = 2048
    #: the torch module whose weights this backend runs (itself, or a copy made from it)
    source: torch.nn.Module | None = None
    #: `weights_version(source)` when a copy was made from it; None when nothing was copied
    _version: tuple | None = None

    @property
    def lossy(self) -> bool:
        """True when scores may differ from fp32 beyond float noise (bf16 on CPU, int8)."""
        return False

    def session(self):
        """A context to score many batches in (inference mode, autocast, ...)."""
        return contextlib.nullcontext()

    def run(self, arrays: dict[str, np.ndarray]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def is_current(self, model: torch.nn.Module) -> bool:
        """False when the weights this backend runs no longer are `model`'s (a copy went stale)."""
        return self._version is None or (model is self.source and weights_version(model) == self._version)

    def describe(self) -> str:
        return f"{self.name} {self.precision}"


# ---------------------------------------------------------------------------------- fingerprints
def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 of every tensor of the state dict (names, dtypes, shapes, bytes): ties an export,
    a timing or a fidelity record to exactly these weights (a seeded new head included)."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.view(torch.int16)
        h.update(memoryview(t.numpy()).cast("B"))
    return h.hexdigest()[:32]


def weights_version(model: torch.nn.Module) -> tuple:
    """Cheap marker of in-place changes: parameter storages and version counters (an optimizer
    step or load_state_dict changes it), so a copy made from these weights can tell it is stale."""
    return tuple((p.data_ptr(), p._version) for p in model.parameters())


def random_batch(model: torch.nn.Module, rows: int, width: int, *, token_types: bool) -> dict[str, np.ndarray]:
    """Seeded random int64 inputs of `rows` x `width` tokens, to time or trace `model` with: ids from
    its vocabulary (above the special tokens), a full attention mask and, with `token_types`, the
    second segment over the last three quarters of each row."""
    vocab = int(getattr(getattr(model, "config", None), "vocab_size", 1000) or 1000)
    rng = np.random.default_rng(0)
    batch = {
        "input_ids": rng.integers(min(1000, vocab - 1), vocab, (rows, width), dtype=np.int64),
        "attention_mask": np.ones((rows, width), dtype=np.int64),
    }
    if token_types:
        types = np.zeros((rows, width), dtype=np.int64)
        types[:, width // 4 :] = 1
        batch["token_type_ids"] = types
    return batch


def cpu_info() -> dict:
    """The host's CPU model, the flags that decide kernel choice, and torch's capability."""
    model = ""
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:  # not Linux: platform's name is all we have
        pass
    model = model or platform.processor() or platform.machine()
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8")
    return {
        "cpu": model,
        "flags": sorted(f for f in wanted if f in flags),
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def host_key(extra: str = "", threads: bool = True) -> str:
    """A short key for timings (threads=True) and fidelity records (kernels only) that hold only on this kind of host."""
    info = cpu_info()
    used = info["threads"] if threads else "-"
    text = f"{info['cpu']}|{','.join(info['flags'])}|{info['torch_capability']}|{used}|{info['torch']}|{extra}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------- caches
def cache_dir() -> Path:
    """$CROSSRANK_CACHE, else $XDG_CACHE_HOME/crossrank, else ~/.cache/crossrank."""
    if os.environ.get("CROSSRANK_CACHE"):
        return Path(os.environ["CROSSRANK_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "crossrank"


def read_json(path: Path) -> dict:
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def update_json(path: Path, key: str, value) -> bool:
    """Set `key` in the JSON object at `path` (written atomically); False when it cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        content = read_json(path)
        content[key] = value
        with atomic_write(path) as f:
            f.write(json.dumps(content, indent=2, sort_keys=True) + "\n")
        return True
    except OSError:
        return False


def model_subdir(model_path: str | os.PathLike, name: str) -> Path:
    """MODEL/`name` (an export beside the model), or a per-model folder in the user cache when MODEL cannot be written."""
    model_path = Path(model_path).resolve()
    beside = model_path / name
    if beside.is_dir() and os.access(beside, os.W_OK):
        return beside
    if not beside.exists() and os.access(model_path, os.W_OK):
        return beside
    return cache_dir() / name / hashlib.sha256(str(model_path).encode()).hexdigest()[:16]


def writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)

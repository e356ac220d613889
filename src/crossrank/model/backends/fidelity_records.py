"""Fidelity records: has this model passed the fidelity check for this lossy path (bf16 on CPU, int8)?

The check itself (`crossrank.workflows.fidelity`, run by `crossrank export --check`) reranks TREC
DL19 with fp32 and with the path under test; its report is recorded here, beside the model
(MODEL/crossrank-fidelity.json, or the user cache when MODEL is read-only), per path, per host kind
(CPU model, flags, torch version) and per weights (sha256 of the state dict). Loading a lossy path
without a passing record for the same weights and host kind logs a warning naming the command that
runs the check; it does not raise, so a new path can still be tried.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from pathlib import Path

from crossrank.model.backends.base import cache_dir, cpu_info, host_key, read_json, update_json, writable_dir

RECORD = "crossrank-fidelity.json"


def record_path(model_path: str | os.PathLike) -> Path:
    """Where the records of the model at `model_path` are kept."""
    folder = Path(model_path).resolve()
    if writable_dir(folder):
        return folder / RECORD
    return cache_dir() / "fidelity" / f"{hashlib.sha256(str(folder).encode()).hexdigest()[:16]}.json"


def _key(backend: str, precision: str, variant: str = "") -> str:
    return f"{backend}-{precision}" + (f"-{variant}" if variant else "")


def record_fidelity(ce, report: Mapping) -> Path:
    """Record a check's `report` (its fields as a mapping: backend, precision, passed, ... and the
    backend's `variant` where it has one) for the CrossEncoder `ce`'s current weights on this host
    kind; returns the record file."""
    missing = [k for k in ("backend", "precision", "passed") if k not in report]
    if missing:
        raise ValueError(f"record_fidelity expects a report with backend, precision and passed, but it lacks {', '.join(missing)}")
    key = _key(report["backend"], report["precision"], report.get("variant", ""))
    path = record_path(ce.path)
    content = read_json(path).get(key) or {}
    content[host_key(threads=False)] = dict(report) | {
        "fingerprint": ce.weights_fingerprint(), "host": cpu_info(), "checked": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    update_json(path, key, content)
    return path


def passing_record(ce, backend: str, precision: str, variant: str = "") -> dict | None:
    """This host kind's passing record for the CrossEncoder `ce`'s weights and this path (a backend's
    `variant` of it: a check of bf16 autocast does not vouch for bf16 weights), else None."""
    entry = (read_json(record_path(ce.path)).get(_key(backend, precision, variant)) or {}).get(host_key(threads=False))
    if entry and entry.get("passed") and entry.get("fingerprint") == ce.weights_fingerprint():
        return entry
    return None


def passing_records(ce) -> list[dict]:
    """Every passing record for the CrossEncoder `ce`'s weights on this host kind (each holds its
    backend, precision, variant and the pairs/s of the path and of fp32 measured in its check)."""
    host, fingerprint = host_key(threads=False), ce.weights_fingerprint()
    found = []
    for per_host in read_json(record_path(ce.path)).values():
        entry = per_host.get(host) if isinstance(per_host, dict) else None
        if isinstance(entry, dict) and entry.get("passed") and entry.get("fingerprint") == fingerprint:
            found.append(entry)
    return found

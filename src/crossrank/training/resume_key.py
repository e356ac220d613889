"""What a training run was started with, kept beside its checkpoints, so that a resume checks it.

`OUTPUT_DIR/resume_key.json` holds the settings that decide the training (everything of the
`TrainConfig` but logging, saving, evaluation and the length of the run) and a digest of the training examples (queries,
passages, targets, in order). `--resume` with other settings or other data is refused, naming
what differs: checkpoints trained on one set-up, continued on another, give a model of neither.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from crossrank.data.atomic import atomic_write
from crossrank.training.examples import TrainingExample

RESUME_FILE = "resume_key.json"
#: settings a resume may change: where and how often it logs, saves and evaluates, and how long it goes on
FREE_TO_CHANGE = ("output_dir", "attention", "logging_steps", "save_steps", "save_total_limit", "eval", "stop_on_collapse", "max_steps", "epochs")


def examples_digest(examples: Sequence[TrainingExample]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for e in examples:
        h.update(json.dumps([e.query_id, e.query, e.passages, e.targets], ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def resume_key(config_dict: Mapping, examples: Sequence[TrainingExample]) -> dict:
    settings = {k: v for k, v in config_dict.items() if k not in FREE_TO_CHANGE}
    return {"settings": json.loads(json.dumps(settings, default=str)), "examples": len(examples), "examples_digest": examples_digest(examples)}


def _flat(value, prefix: str = "") -> dict:
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): value}


def check_resume(output_dir: str | Path, key: dict) -> None:
    """Refuse to resume checkpoints made with other settings or other examples (a run without a key
    file, from before keys were kept, resumes unchecked)."""
    path = Path(output_dir) / RESUME_FILE
    if not path.exists():
        return
    before = json.loads(path.read_text(encoding="utf-8"))
    was, now = _flat(before.get("settings", {})), _flat(key["settings"])
    changed = [f"{k}: {was.get(k)!r} then, {now.get(k)!r} now" for k in sorted(set(was) | set(now)) if was.get(k) != now.get(k)]
    if before.get("examples_digest") != key["examples_digest"]:
        changed.append(f"training examples: {before.get('examples')} then, {key['examples']} now, and not the same ones")
    if changed:
        raise ValueError(f"{output_dir}: the checkpoints there were trained with other settings or data, so --resume would mix "
                         "two runs: " + "; ".join(changed) + ". Start a new output_dir, or put the settings back")


def write_resume_key(output_dir: str | Path, key: dict) -> None:
    with atomic_write(Path(output_dir) / RESUME_FILE) as f:
        f.write(json.dumps(key, indent=1, sort_keys=True) + "\n")

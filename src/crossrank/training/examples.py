"""Training examples: one query with a list of passages and their targets.

Every training format reduces to this shape:
- pointwise (query, passage, label): one passage;
- n-tuples (query, positive, negative_1..n): targets [1, 0, ..., 0];
- labelled lists (query, [passages], [labels]);
- Tevatron groups: a positive and group_size-1 negatives, positive first;
- distillation: targets are a teacher's scores.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class TrainingExample:
    query: str
    passages: list[str]
    targets: list[float]
    query_id: str = ""
    doc_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.passages) != len(self.targets):
            raise ValueError(
                f"TrainingExample expects one target per passage, but got {len(self.passages)} passages "
                f"and {len(self.targets)} targets (query {self.query_id or self.query!r:.60})"
            )
        if not self.passages:
            raise ValueError(f"TrainingExample expects at least one passage (query {self.query_id or self.query!r:.60})")

    def as_dict(self) -> dict:
        return {"query": self.query, "passages": list(self.passages), "targets": list(self.targets)}


def collate(examples: list[dict]) -> dict:
    """Batch of examples as lists. The key is `targets`, not `labels`: transformers' Trainer
    treats a `labels` entry as a tensor of token labels."""
    return {
        "queries": [e["query"] for e in examples],
        "passages": [e["passages"] for e in examples],
        "targets": [e["targets"] for e in examples],
    }

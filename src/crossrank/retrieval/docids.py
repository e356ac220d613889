"""DocIds: the original doc ids of an index, stored compactly and memory-mappable."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

BLOB_FILE = "doc_ids.utf8"
OFFSETS_FILE = "doc_ids.offsets.npy"
ORDER_FILE = "doc_ids.rank.npy"


class DocIds:
    """Doc ids as one UTF-8 blob plus offsets, and each id's rank in sorted (code point) order.

    Kept as arrays rather than a list of str so a reloaded MS MARCO-size index does not
    build millions of Python strings; ``rank`` is the tie-break key for equal scores (see topk.top_k).
    """

    def __init__(self, blob: np.ndarray, offsets: np.ndarray, rank: np.ndarray):
        self._blob = blob
        self._bytes = memoryview(blob)  # slicing a memoryview is far cheaper than slicing a memmap
        self._offsets = offsets
        self.rank = rank

    @classmethod
    def from_list(cls, ids: Sequence[str]) -> "DocIds":
        encoded = [doc_id.encode("utf-8") for doc_id in ids]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        rank = np.empty(len(ids), dtype=np.int64)
        rank[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
        return cls(blob, offsets, rank)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> str:
        return self.take(np.asarray([i]))[0]

    def take(self, indices: np.ndarray) -> list[str]:
        """The ids at ``indices`` (an int array), decoded in one pass."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"doc index out of range 0..{len(self) - 1}")
        starts = self._offsets[indices].tolist()
        ends = self._offsets[indices + 1].tolist()
        data = self._bytes
        return [str(data[start:end], "utf-8") for start, end in zip(starts, ends)]

    def tolist(self) -> list[str]:
        return self.take(np.arange(len(self)))

    def save(self, directory: Path) -> None:
        self._blob.tofile(directory / BLOB_FILE)
        np.save(directory / OFFSETS_FILE, self._offsets, allow_pickle=False)
        np.save(directory / ORDER_FILE, self.rank, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path, mmap: bool = True) -> "DocIds":
        mode = "r" if mmap else None
        offsets = np.load(directory / OFFSETS_FILE, mmap_mode=mode, allow_pickle=False)
        rank = np.load(directory / ORDER_FILE, mmap_mode=mode, allow_pickle=False)
        blob_path = directory / BLOB_FILE
        if mmap and blob_path.stat().st_size > 0:
            blob = np.memmap(blob_path, dtype=np.uint8, mode="r")
        else:  # np.memmap refuses empty files (possible only when every id is "")
            blob = np.fromfile(blob_path, dtype=np.uint8)
        return cls(blob, offsets, rank)

    @staticmethod
    def files() -> tuple[str, ...]:
        return (BLOB_FILE, OFFSETS_FILE, ORDER_FILE)

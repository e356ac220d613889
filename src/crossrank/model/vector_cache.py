"""Embeddings kept by text, so that a text is embedded once per model, and again never after a restart.

`DenseEncoder(..., cache=VectorCache(path))` looks each distinct text up before it embeds it. The
cache belongs to one encoder set-up (model folder, weights, pooling, max_length, precision): a file
written by another set-up is not used (a warning says why) and is replaced at the next save. The
file is written atomically (`crossrank.data.atomic_write`), so a kill leaves the last whole save.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


def text_key(text: str) -> bytes:
    """The 16-byte key of a text (blake2b of its UTF-8 bytes)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class VectorCache:
    """Text -> unit vector, for one encoder set-up; optionally saved to and restored from an `.npz` file.

    Args:
        path: where to keep the vectors (None: memory only).
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self.identity: str | None = None
        self._vectors: dict[bytes, np.ndarray] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._vectors)

    def bind(self, identity: str) -> None:
        """Tie the cache to one encoder set-up; vectors of another set-up (in memory or on disk) are dropped."""
        if self.identity == identity:
            return
        if self.identity is not None and self._vectors:
            logger.warning("vector cache: %d vectors of %s dropped for %s", len(self._vectors), self.identity, identity)
        self.identity = identity
        self._vectors = {}
        if self.path is not None and self.path.exists():
            self._load(identity)

    def _load(self, identity: str) -> None:
        try:
            with np.load(self.path, allow_pickle=False) as stored:
                saved_identity = str(stored["identity"])
                keys, vectors = stored["keys"], stored["vectors"]
        except (OSError, ValueError, KeyError) as err:
            logger.warning("vector cache %s is unreadable (%s): starting empty; it is replaced at the next save", self.path, err)
            return
        if saved_identity != identity:
            logger.warning("vector cache %s was written by another encoder set-up (%s; now %s): not used",
                           self.path, saved_identity, identity)
            return
        if keys.ndim != 2 or keys.shape[1] != 16 or vectors.ndim != 2 or len(keys) != len(vectors):
            logger.warning("vector cache %s has malformed arrays (keys %s, vectors %s): not used", self.path, keys.shape, vectors.shape)
            return
        self._vectors = {bytes(k): v for k, v in zip(keys, vectors.astype(np.float32))}
        logger.info("vector cache %s: %d vectors restored", self.path, len(self._vectors))

    def missing(self, texts: Sequence[str]) -> list[int]:
        """Indices of the texts without a stored vector (counted as misses; the others as hits)."""
        out = [i for i, t in enumerate(texts) if text_key(t) not in self._vectors]
        self.misses += len(out)
        self.hits += len(texts) - len(out)
        return out

    def put(self, texts: Iterable[str], vectors: np.ndarray) -> None:
        for text, vector in zip(texts, vectors):
            self._vectors[text_key(text)] = np.asarray(vector, dtype=np.float32)

    def get(self, texts: Sequence[str], dim: int) -> np.ndarray:
        """`(len(texts), dim)`: the stored vectors, in order; KeyError for a text never put."""
        out = np.empty((len(texts), dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self._vectors[text_key(text)]
        return out

    def save(self) -> None:
        """Write every vector to `path` atomically (nothing to do without a path or a set-up)."""
        if self.path is None or self.identity is None:
            return
        from crossrank.data import atomic_write

        keys = np.frombuffer(b"".join(self._vectors), dtype=np.uint8).reshape(-1, 16)
        vectors = np.stack(list(self._vectors.values())) if self._vectors else np.empty((0, 0), dtype=np.float32)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path, "wb") as f:
            np.savez(f, identity=np.array(self.identity), keys=keys, vectors=vectors)

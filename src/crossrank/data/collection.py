"""`Collection`: a compact, read-only lookup of passage text by id.

Memory layout (built for the 8.8M-passage MS MARCO collection, ~3 GB of text):

* all texts are concatenated into ONE UTF-8 ``bytearray``; passage ``i`` (file order) is
  ``blob[offsets[i]:offsets[i + 1]]`` with ``offsets`` a numpy ``int64`` array;
* ids: when every id is a canonical decimal integer (MS MARCO pids) they are kept as a sorted
  numpy ``int64`` array, else as a sorted numpy fixed-width bytes array (UTF-8); both are searched
  with ``np.searchsorted``; a permutation (``int32`` when it fits) maps sorted position to file
  position and is dropped when the file is already sorted by id;
* BEIR titles, when present, live in a second blob of the same shape.

So the overhead is ~16-24 bytes per passage on top of the text bytes: no per-passage Python objects.
Text is decoded from UTF-8 at lookup time.
"""
from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator

import numpy as np

from crossrank.data.corpus import iter_corpus, join_title
from crossrank.data.errors import FormatError
from crossrank.data.records import Passage
from crossrank.data.textfiles import PathLike

_MAX_INT_ID_DIGITS = 18  # always fits in int64


def _canonical_int(doc_id: str) -> int | None:
    """``int(doc_id)`` when ``str(int(doc_id)) == doc_id`` (so the string is recoverable), else None."""
    if not (doc_id.isascii() and doc_id.isdigit()) or len(doc_id) > _MAX_INT_ID_DIGITS:
        return None
    if len(doc_id) > 1 and doc_id[0] == "0":
        return None
    return int(doc_id)


class _TextStore:
    """Append-only UTF-8 blob plus offsets; item ``i`` is the ``i``-th appended string."""

    def __init__(self) -> None:
        self._blob = bytearray()
        self._ends = array("q")
        self._offsets: np.ndarray | None = None

    def append(self, text: str) -> None:
        self._blob += text.encode("utf-8")
        self._ends.append(len(self._blob))

    def append_empty(self, count: int) -> None:
        self._ends.extend([len(self._blob)] * count)

    def finish(self) -> None:
        offsets = np.zeros(len(self._ends) + 1, dtype=np.int64)
        offsets[1:] = np.frombuffer(self._ends, dtype=np.int64)
        self._offsets = offsets
        self._ends = array("q")

    def __getitem__(self, index: int) -> str:
        start, end = self._offsets[index], self._offsets[index + 1]
        return self._blob[start:end].decode("utf-8")

    @property
    def nbytes(self) -> int:
        return len(self._blob) + self._offsets.nbytes


class _IdIndex:
    """Sorted numpy keys + optional permutation to file positions."""

    def __init__(self, keys: np.ndarray, numeric: bool, source: str) -> None:
        self._numeric = numeric
        if len(keys) > 1 and bool(np.all(keys[1:] > keys[:-1])):
            self._order = None
            self._keys = keys
        else:
            order = np.argsort(keys, kind="stable")
            self._keys = keys[order]
            self._order = order.astype(np.int32) if len(keys) < 2**31 else order
            self._check_unique(source)

    def _check_unique(self, source: str) -> None:
        same = np.flatnonzero(self._keys[1:] == self._keys[:-1])
        if len(same):
            raise FormatError(source, None, f"duplicate doc id {self._decode(self._keys[same[0]])!r}")

    def _decode(self, key) -> str:
        return str(int(key)) if self._numeric else bytes(key).decode("utf-8")

    def _encode(self, doc_id: str):
        if self._numeric:
            return _canonical_int(doc_id)
        return doc_id.encode("utf-8")

    def position(self, doc_id: str) -> int | None:
        """File position of ``doc_id``, or None."""
        if not isinstance(doc_id, str):
            return None
        key = self._encode(doc_id)
        if key is None or len(self._keys) == 0:
            return None
        if not self._numeric and len(key) > self._keys.dtype.itemsize:
            return None
        at = int(np.searchsorted(self._keys, key))
        if at == len(self._keys) or self._keys[at] != key:
            return None
        return at if self._order is None else int(self._order[at])

    def ids_in_file_order(self) -> Iterator[str]:
        if self._order is None:
            keys = self._keys
        else:
            keys = np.empty_like(self._keys)
            keys[self._order] = self._keys
        for key in keys:
            yield self._decode(key)

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def nbytes(self) -> int:
        return self._keys.nbytes + (0 if self._order is None else self._order.nbytes)


class _IdCollector:
    """Collects ids as int64 while they are canonical integers, falls back to strings otherwise."""

    def __init__(self) -> None:
        self._ints: array | None = array("q")
        self._strs: list[str] = []

    def append(self, doc_id: str) -> None:
        if self._ints is not None:
            value = _canonical_int(doc_id)
            if value is not None:
                self._ints.append(value)
                return
            self._strs = [str(v) for v in self._ints]
            self._ints = None
        self._strs.append(doc_id)

    def finish(self, source: str) -> _IdIndex:
        if self._ints is not None:
            keys = np.frombuffer(self._ints, dtype=np.int64).copy() if len(self._ints) else np.zeros(0, np.int64)
            return _IdIndex(keys, numeric=True, source=source)
        encoded = [doc_id.encode("utf-8") for doc_id in self._strs]
        self._strs = []
        return _IdIndex(np.array(encoded, dtype=bytes), numeric=False, source=source)


class Collection:
    """Read-only ``doc_id -> text`` store over a passage file (see module docstring for memory).

    ``coll[doc_id]`` returns the passage text; for BEIR corpora with a non-empty title it is
    ``title + " " + text`` (`join_title`; the usual BEIR/cross-encoder input; `text()` gives the body alone and
    `title()` the title). Missing ids raise ``KeyError``; ``get`` returns a default instead.
    """

    def __init__(self, ids: _IdIndex, texts: _TextStore, titles: _TextStore | None, source: str) -> None:
        self._ids = ids
        self._texts = texts
        self._titles = titles
        self.source = source

    @classmethod
    def open(cls, path: PathLike) -> Collection:
        """Load a ``collection.tsv`` / BEIR ``corpus.jsonl`` (``.gz`` allowed)."""
        return cls.from_passages(iter_corpus(path), source=str(path))

    @classmethod
    def from_passages(cls, passages: Iterable[Passage], source: str = "<passages>") -> Collection:
        ids, texts = _IdCollector(), _TextStore()
        titles: _TextStore | None = None
        for count, passage in enumerate(passages):
            ids.append(passage.doc_id)
            texts.append(passage.text)
            if passage.title and titles is None:
                titles = _TextStore()
                titles.append_empty(count)
            if titles is not None:
                titles.append(passage.title)
        texts.finish()
        if titles is not None:
            titles.finish()
        return cls(ids.finish(source), texts, titles, source)

    def _position(self, doc_id: str) -> int:
        position = self._ids.position(doc_id)
        if position is None:
            raise KeyError(doc_id)
        return position

    def __getitem__(self, doc_id: str) -> str:
        position = self._position(doc_id)
        title = self._titles[position] if self._titles is not None else ""
        return join_title(title, self._texts[position])

    def get(self, doc_id: str, default: str | None = None) -> str | None:
        try:
            return self[doc_id]
        except KeyError:
            return default

    def text(self, doc_id: str) -> str:
        """Body text only (no title)."""
        return self._texts[self._position(doc_id)]

    def title(self, doc_id: str) -> str:
        """Title ("" when the corpus has none for this passage)."""
        position = self._position(doc_id)
        return self._titles[position] if self._titles is not None else ""

    def passage(self, doc_id: str) -> Passage:
        position = self._position(doc_id)
        title = self._titles[position] if self._titles is not None else ""
        return Passage(doc_id, self._texts[position], title)

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self._ids.position(doc_id) is not None

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        """Doc ids in file order."""
        return self._ids.ids_in_file_order()

    @property
    def nbytes(self) -> int:
        """Bytes held by the blobs and numpy arrays (the whole payload of the store)."""
        titles = self._titles.nbytes if self._titles is not None else 0
        return self._texts.nbytes + titles + self._ids.nbytes

    def __repr__(self) -> str:
        return f"Collection({self.source!r}, {len(self)} passages, {self.nbytes} bytes)"

"""BM25Config: every setting that changes what a BM25 index scores."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

# bm25s scoring variants whose score is a plain sum over the query terms a document contains
# (so a document without any query term scores 0). bm25l / bm25+ add a score to every
# document and are not offered.
SUPPORTED_METHODS = ("lucene", "robertson", "atire")


@dataclass(frozen=True)
class BM25Config:
    """BM25 parameters and text analysis.

    Defaults follow pyserini's MS MARCO passage baseline: k1=0.9, b=0.4, Lucene's BM25
    variant, English stopwords (bm25s's "en" list, Lucene's 33-word English stop set as in
    Anserini) and the Snowball English stemmer (PyStemmer). ``stopwords=None`` or
    ``stemmer=None`` switches that step off.
    """

    k1: float = 0.9
    b: float = 0.4
    method: str = "lucene"
    stopwords: str | None = "en"
    stemmer: str | None = "english"

    def __post_init__(self) -> None:
        from crossrank.data.ranges import Range, check_ranges

        check_ranges("BM25", self, {"k1": Range(0), "b": Range(0, 1)})  # NaN and infinities refused too
        if self.method not in SUPPORTED_METHODS:
            raise ValueError(f"unknown BM25 method {self.method!r}; choose one of {', '.join(SUPPORTED_METHODS)}")
        if self.stopwords is not None and not isinstance(self.stopwords, str):
            raise TypeError(f"stopwords must be a language name such as 'en', or None, got {self.stopwords!r}")
        if self.stemmer is not None and not isinstance(self.stemmer, str):
            raise TypeError(f"stemmer must be a PyStemmer algorithm name such as 'english', or None, got {self.stemmer!r}")
        # Unknown stemmer / stopword names are reported when the analyzer is built, where the
        # list of known names is at hand (see crossrank.retrieval.analyzer).

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BM25Config":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown BM25Config fields: {', '.join(unknown)}")
        return cls(**data)

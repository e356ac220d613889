"""Analyzer: text -> term ids, identical for passages and queries (bm25s Tokenizer + PyStemmer)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from bm25s.tokenization import Tokenizer

from crossrank.data.records import Passage
from crossrank.retrieval.config import BM25Config

VOCAB_FILE = "vocab.tokenizer.json"


def passage_text(passage: Passage) -> str:
    """The text that is indexed for a passage: BEIR-style ``title + " " + text`` (just the text without a title).

    The same convention as crossrank.data.corpus.join_title, kept here so retrieval needs only the records.
    """
    return f"{passage.title} {passage.text}" if passage.title else passage.text


def _make_stemmer(name: str | None):
    if name is None:
        return None
    import Stemmer  # PyStemmer

    known = Stemmer.algorithms()
    if name not in known:
        raise ValueError(f"unknown stemmer {name!r}; PyStemmer knows: {', '.join(known)} (or use stemmer=None)")
    return Stemmer.Stemmer(name)


class Analyzer:
    """Lower-cases, splits on ``\\b\\w\\w+\\b`` (bm25s default), drops stopwords, stems.

    Passages grow the vocabulary; queries are mapped onto it, and query terms the corpus
    never had are dropped (they cannot match anything).
    """

    def __init__(self, config: BM25Config):
        self.config = config
        stemmer = _make_stemmer(config.stemmer)
        try:
            self._tokenizer = Tokenizer(lower=True, stopwords=config.stopwords, stemmer=stemmer)
        except ValueError as exc:
            raise ValueError(f"unknown stopwords {config.stopwords!r}: {exc}") from None

    @property
    def vocab(self) -> dict[str, int]:
        """term (stem) -> term id."""
        return self._tokenizer.get_vocab_dict()

    def analyze(self, text: str) -> list[str]:
        """The terms a text is indexed / searched as, e.g. "The cats sat." -> ["cat", "sat"] (vocabulary-independent)."""
        tok = self._tokenizer
        words = tok.splitter(text.lower() if tok.lower else text)
        stop = set(tok.stopwords or ())
        words = [w for w in words if w not in stop]
        return [tok.stemmer(w) for w in words] if tok.stemmer is not None else words

    def index_terms(self, texts: Iterable[str]) -> Iterator[list[int]]:
        """Term ids of each passage text, adding new terms to the vocabulary. An empty text gives []."""
        return self._tokenizer.streaming_tokenize(texts, update_vocab=True, allow_empty=False)

    def query_terms(self, texts: list[str]) -> list[list[int]]:
        """Term ids of each query text (repeats kept: a repeated term counts twice, as in Anserini)."""
        return self._tokenizer.tokenize(
            texts, update_vocab=False, allow_empty=False, show_progress=False, return_as="ids"
        )

    def save(self, directory: Path) -> None:
        self._tokenizer.save_vocab(str(directory), vocab_name=VOCAB_FILE)

    @classmethod
    def load(cls, directory: Path, config: BM25Config) -> "Analyzer":
        analyzer = cls(config)
        analyzer._tokenizer.load_vocab(str(directory), vocab_name=VOCAB_FILE)
        return analyzer

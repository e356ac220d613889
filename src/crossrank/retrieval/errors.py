"""Errors raised by crossrank.retrieval."""
from __future__ import annotations


class NotAnIndexError(FileNotFoundError):
    """A directory that should hold a saved BM25 index does not (or holds only part of one).

    A FileNotFoundError, so callers (and the CLI) that handle missing files handle this too.
    """

"""The one exception raised for malformed input files."""
from __future__ import annotations

import os


class FormatError(ValueError):
    """A line of an input file does not have the expected shape.

    The message reads ``<file>:<line>: <what is wrong>`` (line numbers are 1-based),
    e.g. ``runs/x.trec:17: expected 6 whitespace-separated fields (qid Q0 docid rank score tag), got 4``.
    """

    def __init__(self, path: str | os.PathLike[str], line_number: int | None, message: str) -> None:
        self.path = os.fspath(path)
        self.line_number = line_number
        self.reason = message
        where = self.path if line_number is None else f"{self.path}:{line_number}"
        super().__init__(f"{where}: {message}")

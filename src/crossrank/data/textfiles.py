"""Opening text files (``.gz`` transparently) and iterating their non-blank lines."""
from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterator
from typing import IO

PathLike = str | os.PathLike[str]


def is_gzip(path: PathLike) -> bool:
    return os.fspath(path).endswith(".gz")


def base_name(path: PathLike) -> str:
    """File name without directory and without a trailing ``.gz`` (used for format detection)."""
    name = os.path.basename(os.fspath(path))
    return name[:-3] if name.endswith(".gz") else name


def open_text(path: PathLike, mode: str = "rt") -> IO:
    """Open ``path`` for reading or writing; a ``.gz`` suffix means gzip.

    Text modes use UTF-8 and split lines on ``\\n`` only (no newline translation), so a stray
    ``\\r`` inside a passage never splits a record. Binary modes (``"rb"``, ``"wb"``) are passed through.
    """
    binary = "b" in mode
    bare = mode.replace("t", "").replace("b", "")
    if is_gzip(path):
        if binary:
            return gzip.open(path, bare + "b")
        return gzip.open(path, bare + "t", encoding="utf-8", newline="\n")
    if binary:
        return open(path, bare + "b")
    return open(path, bare, encoding="utf-8", newline="\n")


def iter_lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` for every non-blank line, 1-based, line ending removed."""
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if line.endswith("\r"):
                line = line[:-1]
            if line.strip():
                yield number, line


def wrap_text(raw: IO[bytes]) -> io.TextIOWrapper:
    return io.TextIOWrapper(raw, encoding="utf-8", newline="\n")

"""Opening text files (``.gz`` transparently) and iterating their non-blank lines."""
from __future__ import annotations

import codecs
import gzip
import io
import os
import zlib
from collections.abc import Iterator
from typing import IO

from crossrank.data.errors import FormatError

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
    """Yield ``(line_number, line)`` for every non-blank line, 1-based, line ending removed.

    The one place input text is decoded: UTF-8, a byte-order mark at the start dropped (editors
    on Windows write one; left in, it would become part of the first id), and a line that is not
    UTF-8, a corrupt ``.gz`` file or a path that is not a file raise `FormatError` naming it.
    """
    if os.path.isdir(path):
        raise FormatError(path, None, "is a directory; expected a file")
    number = 0
    try:
        with open_text(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if number == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8):]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise FormatError(path, number, f"not valid UTF-8 (byte {exc.start + 1} of the line is "
                                                    f"{raw[exc.start:exc.start + 1]!r}); save the file as UTF-8") from None
                line = line.rstrip("\n")
                if line.endswith("\r"):
                    line = line[:-1]
                if line.strip():
                    yield number, line
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise FormatError(path, None, f"corrupt gzip data after line {number} ({exc})") from None


def wrap_text(raw: IO[bytes]) -> io.TextIOWrapper:
    return io.TextIOWrapper(raw, encoding="utf-8", newline="\n")

"""Atomic output: write to a temporary file beside the target, then ``os.replace`` it."""
from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from crossrank.data.textfiles import PathLike, base_name, is_gzip, wrap_text


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w") -> Iterator[IO]:
    """Context manager yielding a handle whose content appears at ``path`` only on success.

    ``mode`` is ``"w"``/``"wt"`` (UTF-8 text, ``\\n`` line endings) or ``"wb"``. A ``.gz`` path is
    gzip-compressed (deterministic header: no timestamp). If the block raises, the temporary
    file is removed and ``path`` is left untouched (an existing file keeps its old content).
    """
    if mode not in ("w", "wt", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w', 'wt' or 'wb', got {mode!r}")
    target = Path(path)
    directory = target.parent
    if not directory.is_dir():
        raise FileNotFoundError(f"output directory does not exist: {directory}")
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw:
            with _wrap(raw, target, binary="b" in mode) as handle:
                yield handle
        os.chmod(tmp_name, 0o666 & ~_umask())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def _wrap(raw: IO[bytes], target: Path, binary: bool) -> Iterator[IO]:
    if is_gzip(target):
        stream: IO[bytes] = gzip.GzipFile(filename=base_name(target), mode="wb", fileobj=raw, mtime=0)
    else:
        stream = raw
    if binary:
        with contextlib.ExitStack() as stack:
            if stream is not raw:
                stack.enter_context(stream)
            yield stream
        return
    text = wrap_text(stream)
    try:
        yield text
    finally:
        text.flush()
        text.detach()
        if stream is not raw:
            stream.close()

"""Atomic output: write to a temporary file (or folder) beside the target, then ``os.replace`` it.

`atomic_write` serves one file; `atomic_dir` a folder of files written by code that wants a
folder to write into (``save_pretrained``, an exporter, an index writer).
"""
from __future__ import annotations

import contextlib
import glob
import gzip
import os
import shutil
import tempfile
import uuid
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
    remove_stale_temporaries(target)
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp")
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


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove the temporary files of `target` left by writers that died (SIGKILL, power loss): each
    temporary names its writer's process id, and only those of processes no longer alive are removed."""
    removed = []
    for tmp in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        pid = tmp.name[len(target.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


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


@contextlib.contextmanager
def atomic_dir(path: PathLike, *, merge: bool = False, label: str = "tmp") -> Iterator[Path]:
    """Context manager yielding an empty staging folder whose content appears at ``path`` only on success.

    ``merge=False`` (swap a whole folder): the staging folder is a hidden sibling of ``path``
    (``.NAME.LABEL-PID-HEX``); on success it takes the place of ``path``: an existing ``path`` is
    moved aside into another hidden sibling, the staging folder renamed to ``path``, and the old
    folder removed, so nothing of the old ``path`` survives (should the rename fail, the old folder
    is put back). POSIX cannot rename a folder over a non-empty one, so between those two renames
    ``path`` is briefly absent, but it never holds a half-written mix.

    ``merge=True`` (add files to a folder): ``path`` is created if needed and the staging folder
    made inside it (``PATH/.LABEL-PID-HEX``); on success each entry of the staging folder is moved
    into ``path`` with ``os.replace``: each file appears whole, same-named ones are replaced, the
    folder's other files are kept.

    If the block raises, the staging folder is removed and ``path`` is left untouched. The
    staging folder is made with a plain ``mkdir``, so the umask applies to it (and, when swapped
    in, to ``path``).
    """
    target = Path(path)
    if merge:
        target.mkdir(parents=True, exist_ok=True)
        staging = _fresh_dir(target, f".{label}")
    else:
        if target.exists() and not target.is_dir():
            raise NotADirectoryError(f"atomic_dir: {target} is a file, not a folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = _fresh_dir(target.parent, f".{target.name}.{label}")
    try:
        yield staging
        if merge:
            for entry in sorted(staging.iterdir()):
                os.replace(entry, target / entry.name)
        else:
            _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fresh_dir(parent: Path, prefix: str) -> Path:
    """A new, empty folder ``PREFIX-PID-HEX`` in ``parent`` (plain mkdir, so the umask applies)."""
    path = parent / f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    return path


def _swap_in(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``; an existing ``target`` is moved aside first, removed after."""
    if not target.exists():
        os.replace(staging, target)
        return
    old = _fresh_dir(target.parent, f".{target.name}.old")
    aside = old / target.name
    try:
        os.replace(target, aside)
    except BaseException:
        old.rmdir()
        raise
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(aside, target)  # should this fail too, the old folder stays where ``aside`` says
        old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)


def check_writable(path: PathLike) -> None:
    """Fail now, with one line, where `path` could not be written later (a folder there, or a
    folder above it that this user cannot write), before any long work starts."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{target} is a directory; expected an output file name")
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"cannot write {target}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {target}: {folder} is not writable")

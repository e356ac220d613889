"""Resumable, checksummed HTTP download of one file: ``FILE.part`` -> verify -> ``FILE``.

Each file streams to ``FILE.part`` (with a tqdm progress bar), is hashed on the fly, checked
against its published checksum and only then renamed to ``FILE`` (``os.replace``). An existing
``FILE.part`` is resumed with an HTTP ``Range`` request; a server that answers ``200`` instead of
``206`` makes the download restart from byte 0, and ``416`` means the part is already complete.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

try:  # POSIX only: lets two processes not write the same .part at once
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

USER_AGENT = "crossrank-download/0.1 (+python-urllib)"
CHUNK_SIZE = 1 << 20


# --------------------------------------------------------------------------------------------
# errors and results
# --------------------------------------------------------------------------------------------

class DownloadError(RuntimeError):
    """A file could not be fetched (HTTP error, network failure, interrupted transfer)."""


class ChecksumError(DownloadError):
    """The bytes received do not match the published checksum (or size)."""

    def __init__(self, path: str | os.PathLike[str], algorithm: str, expected: str, actual: str, hint: str = "") -> None:
        self.path = os.fspath(path)
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual
        message = f"{self.path}: {algorithm} mismatch: expected {expected}, got {actual}"
        super().__init__(f"{message}; {hint}" if hint else message)


@dataclass
class DownloadResult:
    path: Path
    status: str  # "downloaded", "resumed", "skipped"
    algorithm: str  # digest checked (or recorded): "md5" / "sha256"
    digest: str
    verified: bool  # True: matched a published checksum; False: none published, digest recorded
    bytes_fetched: int = 0
    extracted: list[Path] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# hashing
# --------------------------------------------------------------------------------------------

def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256", progress: bool | None = False) -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    hasher = hashlib.new(algorithm)
    path = Path(path)
    with open(path, "rb") as handle, _bar(path.stat().st_size, 0, f"checking {path.name}", progress) as bar:
        for chunk in iter(lambda: handle.read(CHUNK_SIZE), b""):
            hasher.update(chunk)
            bar.update(len(chunk))
    return hasher.hexdigest()


def _expected(md5: str | None, sha256: str | None) -> tuple[str, str | None]:
    if sha256:
        return "sha256", sha256.lower()
    if md5:
        return "md5", md5.lower()
    return "sha256", None


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _record_sha256(path: Path, digest: str) -> None:
    _sidecar(path).write_text(f"{digest}  {path.name}\n", encoding="utf-8")
    logger.warning("no published checksum for %s: recorded its sha256 %s in %s", path.name, digest, _sidecar(path).name)


def _recorded_sha256(path: Path) -> str | None:
    side = _sidecar(path)
    if not side.is_file():
        return None
    text = side.read_text(encoding="utf-8").split()
    return text[0].lower() if text else None


@contextlib.contextmanager
def _bar(total: int | None, initial: int, desc: str, progress: bool | None) -> Iterator:
    """tqdm progress bar on stderr; ``progress=None`` shows it only on a terminal."""
    if progress is False:
        yield _NoBar()
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
              disable=None if progress is None else False, leave=False) as bar:
        yield bar


class _NoBar:
    def update(self, n: int) -> None:
        pass



# --------------------------------------------------------------------------------------------
# downloading
# --------------------------------------------------------------------------------------------

class _Retry(Exception):
    """A transient failure: the request may be repeated (resuming from what the .part holds)."""


class _Restart(Exception):
    """The .part cannot be resumed: truncate it and request the whole file."""


_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)", re.IGNORECASE)


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes START-END/TOTAL`` -> (START, TOTAL); ``bytes */TOTAL`` -> (None, TOTAL)."""
    match = _CONTENT_RANGE.match(value or "")
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(3)) if match.group(3) != "*" else None
    return start, total


class _PartFile:
    """The open ``.part`` file plus a running hash of everything in it."""

    def __init__(self, path: Path, algorithm: str) -> None:
        self.path = path
        self.algorithm = algorithm
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        self.handle: IO[bytes] = os.fdopen(fd, "r+b")
        if fcntl is not None:
            try:
                fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self.handle.close()
                raise DownloadError(f"{path} is locked: another process is downloading this file") from None
        self.hasher = hashlib.new(algorithm)
        self.size = 0
        self.reused = 0  # bytes kept from an earlier attempt

    def load(self, progress: bool | None) -> int:
        """Hash what an earlier attempt left in the part; return its size."""
        self.handle.seek(0)
        total = os.fstat(self.handle.fileno()).st_size
        if total:
            with _bar(total, 0, f"checking {self.path.name}", progress) as bar:
                for chunk in iter(lambda: self.handle.read(CHUNK_SIZE), b""):
                    self.hasher.update(chunk)
                    bar.update(len(chunk))
        self.size = self.reused = self.handle.tell()
        return self.size

    def truncate(self) -> None:
        self.handle.seek(0)
        self.handle.truncate()
        self.hasher = hashlib.new(self.algorithm)
        self.size = self.reused = 0

    def write(self, chunk: bytes) -> None:
        self.handle.write(chunk)
        self.hasher.update(chunk)
        self.size += len(chunk)

    def close(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()


def download_file(
    url: str,
    path: str | os.PathLike[str],
    *,
    md5: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    force: bool = False,
    progress: bool | None = None,
    timeout: float = 60.0,
    retries: int = 3,
    retry_wait: float = 2.0,
    chunk_size: int = CHUNK_SIZE,
) -> DownloadResult:
    """Download ``url`` to ``path`` via ``path.part``: resume, verify, rename atomically.

    A present ``path`` is verified (size, then digest) and skipped unless ``force``; a present
    ``path`` that fails verification raises `ChecksumError` (rerun with ``force``). Transient
    network failures are retried ``retries`` times, resuming from the part each time; when they
    run out, `DownloadError` is raised and the ``.part`` is kept so the next call resumes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    algorithm, expected = _expected(md5, sha256)
    header_items = dict(headers.items() if isinstance(headers, Mapping) else headers)

    if path.exists() and not force:
        return _verify_present(path, algorithm, expected, size, progress)
    if force:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()

    state = _PartFile(part, algorithm)
    fetched = 0
    try:
        if state.load(progress) and size is not None and state.size > size:
            logger.warning("%s is larger than %s (%d bytes): starting over", part.name, path.name, size)
            state.truncate()
        attempt = 0
        request = _Request(url, header_items, size, expected, timeout, chunk_size, progress, path.name)
        while not (size is not None and state.size == size):
            try:
                fetched += _fetch(request, state)
                break
            except _Restart as why:
                logger.warning("%s: %s; downloading it from the start", path.name, why)
                state.truncate()
            except _Retry as why:
                attempt += 1
                if attempt > retries:
                    raise DownloadError(
                        f"download of {url} failed after {retries + 1} attempts ({why}); {state.size} bytes kept in "
                        f"{part}: run again to resume") from None
                wait = retry_wait * 2 ** (attempt - 1)
                logger.warning("%s: %s; retrying in %.0f s (%d/%d)", path.name, why, wait, attempt, retries)
                time.sleep(wait)
    except BaseException:
        state.close()
        if state.size == 0:  # nothing worth resuming
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
        raise
    state.close()

    actual = state.hasher.hexdigest()
    if size is not None and state.size != size:
        part.unlink()
        raise ChecksumError(part, "size", f"{size} bytes", f"{state.size} bytes", "the partial file was removed")
    if expected is not None and actual != expected:
        part.unlink()
        raise ChecksumError(path, algorithm, expected, actual,
                            f"the download was removed ({part.name}); the file may have changed upstream or been corrupted")
    os.replace(part, path)
    if expected is None:
        _record_sha256(path, actual)
    else:
        with contextlib.suppress(FileNotFoundError):
            _sidecar(path).unlink()
    status = "resumed" if state.reused else "downloaded"
    logger.info("%s %s (%s %s%s)", status, path, algorithm, actual, " verified" if expected else ", recorded")
    return DownloadResult(path, status, algorithm, actual, expected is not None, fetched)


def _verify_present(path: Path, algorithm: str, expected: str | None, size: int | None,
                    progress: bool | None) -> DownloadResult:
    hint = "rerun with --force (force=True) to download it again"
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise ChecksumError(path, "size", f"{size} bytes", f"{actual_size} bytes", hint)
    digest = file_digest(path, algorithm, progress)
    if expected is not None:
        if digest != expected:
            raise ChecksumError(path, algorithm, expected, digest, hint)
    else:
        recorded = _recorded_sha256(path)
        if recorded is None:
            _record_sha256(path, digest)
        elif recorded != digest:
            raise ChecksumError(path, "sha256", f"{recorded} (recorded in {_sidecar(path).name})", digest, hint)
    logger.info("already present: %s (%s %s)", path, algorithm, digest)
    return DownloadResult(path, "skipped", algorithm, digest, expected is not None, 0)


_TRANSIENT = (TimeoutError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError, http.client.IncompleteRead)


@dataclass(frozen=True)
class _Request:
    """What every HTTP request of one `download_file` call shares."""

    url: str
    headers: Mapping[str, str]
    size: int | None  # exact byte count when known
    expected: str | None  # published digest, hex
    timeout: float
    chunk_size: int
    progress: bool | None
    label: str  # the file name, for messages and the progress bar


def _fetch(request: _Request, state: _PartFile) -> int:
    """One HTTP request appending to ``state``; returns the bytes received."""
    response = _open(request, state)
    if response is None:
        return 0
    received = 0
    offset = state.size
    with response:
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        if offset:
            if response.status == 206:
                start, _ = _parse_content_range(response.headers.get("Content-Range"))
                if start != offset:
                    raise _Restart(f"asked for bytes from {offset}, the server sent them from {start}")
                logger.info("%s: resuming at byte %d", request.label, offset)
            else:  # 200: the server ignored Range and sends the whole file
                logger.warning("%s: the server ignored the Range request (HTTP %d); restarting from byte 0",
                               request.label, response.status)
                state.truncate()
                offset = 0
        total = offset + length if length is not None else request.size
        try:
            with _bar(total, offset, request.label, request.progress) as bar:
                while True:
                    chunk = response.read(request.chunk_size)
                    if not chunk:
                        break
                    state.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except _TRANSIENT as exc:
            raise _Retry(f"connection lost after {state.size} bytes ({exc!r})") from None
    if length is not None and received < length:
        raise _Retry(f"connection closed after {received} of {length} bytes")
    return received


def _open(request: _Request, state: _PartFile) -> http.client.HTTPResponse | None:
    """The response to a GET from the part's size on; None when the part is already complete (HTTP 416)."""
    offset = state.size
    request_headers = {"User-Agent": USER_AGENT, **request.headers}
    if offset:
        request_headers["Range"] = f"bytes={offset}-"
    url = request.url
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=request_headers), timeout=request.timeout)
    except urllib.error.HTTPError as exc:
        with exc:
            if exc.code == 416 and offset:
                _, total = _parse_content_range(exc.headers.get("Content-Range"))
                if total == offset or (total is None and (request.size == offset or (
                        request.expected is not None and state.hasher.copy().hexdigest() == request.expected))):
                    logger.info("%s: the partial download is already complete", request.label)
                    return None
                raise _Restart(f"the server refused to resume at byte {offset} (HTTP 416)") from None
            if exc.code in (408, 429) or exc.code >= 500:
                raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, _TRANSIENT):
            raise _Retry(str(exc.reason)) from None
        raise DownloadError(f"{url}: {exc.reason}") from None
    except _TRANSIENT as exc:
        raise _Retry(repr(exc)) from None

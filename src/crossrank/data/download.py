"""Fetch public MS MARCO / TREC DL / BEIR files from their official locations.

Each file streams to ``FILE.part`` (with a tqdm progress bar), is hashed on the fly, checked
against its published checksum and only then renamed to ``FILE`` (``os.replace``). An existing
``FILE.part`` is resumed with an HTTP ``Range`` request; a server that answers ``200`` instead of
``206`` makes the download restart from byte 0, and ``416`` means the part is already complete.
A checksum mismatch deletes the ``.part`` and raises `ChecksumError` (file, expected, actual).
Files already present are verified and skipped (``force=True`` downloads them again).

Archives (``.tar.gz``, ``.tgz``, ``.tar``, ``.zip``) can be extracted into the destination folder;
members with an absolute path, a ``..`` component, or that are links/devices are rejected, and
members are staged in a hidden folder so a rejected archive leaves nothing behind.

Everything takes the registry / base URL as parameters, so tests and mirrors can point it at
another server. No dependency beyond the standard library and tqdm.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import stat
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

try:  # POSIX only: lets two processes not write the same .part at once
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

USER_AGENT = "crossrank-download/0.1 (+python-urllib)"
CHUNK_SIZE = 1 << 20
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file. ``md5``/``sha256``: published digest (hex) or None if none is
    published (then the sha256 computed on download is recorded in ``FILE.sha256``).
    ``size``: exact byte count when known. ``contents``: what an archive is known to hold
    (paths relative to the extraction folder; informational, used in messages)."""

    name: str
    url: str
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    description: str = ""
    contents: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if "/" in self.name or "\\" in self.name or self.name in ("", ".", ".."):
            raise ValueError(f"RemoteFile name must be a plain file name, got {self.name!r}")
        for algorithm, digest in (("md5", self.md5), ("sha256", self.sha256)):
            if digest is not None and not re.fullmatch(f"[0-9a-f]{{{_HEX_LENGTH[algorithm]}}}", digest):
                raise ValueError(f"{self.name}: {algorithm} must be {_HEX_LENGTH[algorithm]} lowercase hex digits, got {digest!r}")

    @property
    def is_archive(self) -> bool:
        return is_archive(self.name)

    def url_from(self, base_url: str | None = None) -> str:
        """The official URL, or ``BASE_URL/NAME`` when a mirror base URL is given."""
        return self.url if not base_url else f"{base_url.rstrip('/')}/{self.name}"


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    files: tuple[RemoteFile, ...]
    terms: str = ""

    def file(self, name: str) -> RemoteFile:
        for remote in self.files:
            if remote.name == name:
                return remote
        raise ValueError(f"{self.name} has no file {name!r}; it has: {', '.join(f.name for f in self.files)}")


_HEX_LENGTH = {"md5": 32, "sha256": 64}

_MSMARCO = "https://msmarco.z22.web.core.windows.net/msmarcoranking"
# ir_datasets sends this header for the big MS MARCO blobs (older Azure API versions mishandle them).
_AZURE = (("X-Ms-Version", "2019-12-12"),)
_MSMARCO_TERMS = "MS MARCO: non-commercial research use only (https://microsoft.github.io/msmarco/)"

# Checksums and sizes: ir_datasets `ir_datasets/etc/downloads.json` (allenai/ir_datasets) gives
# the expected md5 and exact size ("size_hint") of queries.tar.gz, qrels.train.tsv,
# top1000.dev.tar.gz, triples.train.small.tar.gz, the DL19 files and BEIR scifact.zip.
# collection.tar.gz: md5 from the TREC 2019 Deep Learning Track guidelines ("Dataset files: size
# on disk and md5sum", microsoft/TREC-2019-Deep-Learning README); its listed size is rounded to
# disk blocks, so no exact size is stored. qrels.dev.small.tsv: md5 from castorini/docTTTTTquery's
# README (same digest and 143,300 bytes in ir_datasets' mMARCO mirror of the file).
REGISTRY: dict[str, Dataset] = {
    "msmarco-passage": Dataset(
        name="msmarco-passage",
        description="MS MARCO passage ranking v1: 8.8M passages, train/dev queries, qrels, BM25 top-1000 dev, small train triples",
        terms=_MSMARCO_TERMS,
        files=(
            RemoteFile("collection.tar.gz", f"{_MSMARCO}/collection.tar.gz",
                       md5="87dd01826da3e2ad45447ba5af577628", size=None,
                       description="8,841,823 passages (pid \\t passage), ~1 GB compressed",
                       contents=("collection.tsv",), headers=_AZURE),
            RemoteFile("queries.tar.gz", f"{_MSMARCO}/queries.tar.gz",
                       md5="c177b2795d5f2dcc524cf00fcd973be1", size=18882551,
                       description="queries (qid \\t query): train, dev, eval",
                       contents=("queries.train.tsv", "queries.dev.tsv", "queries.eval.tsv")),
            RemoteFile("qrels.dev.small.tsv", f"{_MSMARCO}/qrels.dev.small.tsv",
                       md5="38a80559a561707ac2ec0f150ecd1e8a", size=143300,
                       description="dev.small qrels (6,980 queries; qid 0 pid 1)"),
            RemoteFile("qrels.train.tsv", f"{_MSMARCO}/qrels.train.tsv",
                       md5="733fb9fe12d93e497f7289409316eccf", size=10589532,
                       description="train qrels (532,761 rows)"),
            RemoteFile("top1000.dev.tar.gz", f"{_MSMARCO}/top1000.dev.tar.gz",
                       md5="8c140662bdf123a98fbfe3bb174c5831", size=687414398,
                       description="BM25 top-1000 for the dev queries (qid \\t pid \\t query \\t passage)",
                       contents=("top1000.dev",), headers=_AZURE),
            RemoteFile("triples.train.small.tar.gz", f"{_MSMARCO}/triples.train.small.tar.gz",
                       md5="c13bf99ff23ca691105ad12eab837f84", size=7930881353,
                       description="39.8M training triples (query \\t positive \\t negative), ~7.4 GB compressed",
                       contents=("triples.train.small.tsv",), headers=_AZURE),
        ),
    ),
    "trec-dl-2019": Dataset(
        name="trec-dl-2019",
        description="TREC Deep Learning 2019 passage task: 200 test queries, NIST graded qrels (43 judged), official BM25 top-1000",
        terms=_MSMARCO_TERMS + "; qrels: NIST",
        files=(
            RemoteFile("msmarco-test2019-queries.tsv.gz", f"{_MSMARCO}/msmarco-test2019-queries.tsv.gz",
                       md5="eda71eccbe4d251af83150abe065368c", size=4276,
                       description="200 test queries (qid \\t query), gzip"),
            RemoteFile("2019qrels-pass.txt", "https://trec.nist.gov/data/deep/2019qrels-pass.txt",
                       md5="2f4be390198da108f6845c822e5ada14", size=187092,
                       description="NIST graded passage qrels (qid Q0 pid grade 0-3)"),
            RemoteFile("msmarco-passagetest2019-top1000.tsv.gz", f"{_MSMARCO}/msmarco-passagetest2019-top1000.tsv.gz",
                       md5="ec9e012746aa9763c7ff10b3336a3ce1", size=26634062,
                       description="official BM25 top-1000 with texts (qid \\t pid \\t query \\t passage), gzip"),
        ),
    ),
    "beir-scifact": Dataset(
        name="beir-scifact",
        description="BEIR SciFact: 5,183 abstracts, 1,109 claims, train/test qrels (BEIR layout)",
        terms="SciFact: CC BY-NC 2.0 (research use)",
        files=(
            RemoteFile("scifact.zip", "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip",
                       md5="5f7d1de60b170fc8027bb7898e2efca1", size=2816079,
                       description="BEIR zip: scifact/corpus.jsonl, queries.jsonl, qrels/{train,test}.tsv",
                       contents=("scifact/corpus.jsonl", "scifact/queries.jsonl",
                                 "scifact/qrels/train.tsv", "scifact/qrels/test.tsv")),
        ),
    ),
}


def get_dataset(name: str, registry: Mapping[str, Dataset] | None = None) -> Dataset:
    registry = REGISTRY if registry is None else registry
    try:
        return registry[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(registry))}") from None


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


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the destination folder (or is a link/device)."""


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
        while not (size is not None and state.size == size):
            try:
                fetched += _fetch(url, state, header_items, size, expected, timeout, chunk_size, progress, path.name)
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


def _fetch(url: str, state: _PartFile, headers: dict[str, str], size: int | None, expected: str | None,
           timeout: float, chunk_size: int, progress: bool | None, label: str) -> int:
    """One HTTP request appending to ``state``; returns the bytes received."""
    offset = state.size
    request_headers = {"User-Agent": USER_AGENT, **headers}
    if offset:
        request_headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=request_headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        with exc:
            if exc.code == 416 and offset:
                _, total = _parse_content_range(exc.headers.get("Content-Range"))
                if total == offset or (total is None and (size == offset or (
                        expected is not None and state.hasher.copy().hexdigest() == expected))):
                    logger.info("%s: the partial download is already complete", label)
                    return 0
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

    received = 0
    with response:
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        if offset:
            if response.status == 206:
                start, _ = _parse_content_range(response.headers.get("Content-Range"))
                if start != offset:
                    raise _Restart(f"asked for bytes from {offset}, the server sent them from {start}")
                logger.info("%s: resuming at byte %d", label, offset)
            else:  # 200: the server ignored Range and sends the whole file
                logger.warning("%s: the server ignored the Range request (HTTP %d); restarting from byte 0",
                               label, response.status)
                state.truncate()
                offset = 0
        total = offset + length if length is not None else size
        try:
            with _bar(total, offset, label, progress) as bar:
                while True:
                    chunk = response.read(chunk_size)
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


# --------------------------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------------------------

def fetch(remote: RemoteFile, dest: str | os.PathLike[str], *, base_url: str | None = None, force: bool = False,
          extract: bool = False, progress: bool | None = None, **kwargs) -> DownloadResult:
    """Download one registry file into folder ``dest`` (and extract it if asked and an archive)."""
    dest = Path(dest)
    result = download_file(remote.url_from(base_url), dest / remote.name, md5=remote.md5, sha256=remote.sha256,
                           size=remote.size, headers=remote.headers, force=force, progress=progress, **kwargs)
    if extract and remote.is_archive:
        result.extracted = extract_archive(result.path, dest, force=force)
    return result


def download_dataset(name: str, dest: str | os.PathLike[str], *, registry: Mapping[str, Dataset] | None = None,
                     files: Sequence[str] | None = None, base_url: str | None = None, force: bool = False,
                     extract: bool = False, progress: bool | None = None, **kwargs) -> list[DownloadResult]:
    """Download every file of dataset ``name`` (or only ``files``) into folder ``dest``."""
    dataset = get_dataset(name, registry)
    remotes = [dataset.file(f) for f in files] if files else list(dataset.files)
    Path(dest).mkdir(parents=True, exist_ok=True)
    return [fetch(remote, dest, base_url=base_url, force=force, extract=extract, progress=progress, **kwargs)
            for remote in remotes]


# --------------------------------------------------------------------------------------------
# extraction
# --------------------------------------------------------------------------------------------

def is_archive(name: str | os.PathLike[str]) -> bool:
    return os.fspath(name).lower().endswith(ARCHIVE_SUFFIXES)


def safe_member_path(name: str) -> PurePosixPath:
    """The relative path an archive member may be written to; `UnsafeArchiveError` if it is
    absolute (``/x``, ``C:\\x``, ``\\\\server``) or has a ``..`` component."""
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised):
        raise UnsafeArchiveError(f"archive member {name!r} has an absolute path")
    parts = [p for p in normalised.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"archive member {name!r} points outside the destination ('..')")
    return PurePosixPath(*parts)


def _marker(archive: Path, dest: Path) -> Path:
    return dest / f".{archive.name}.extracted"


def extract_archive(archive: str | os.PathLike[str], dest: str | os.PathLike[str], *, force: bool = False) -> list[Path]:
    """Extract a ``.tar(.gz)``/``.tgz``/``.zip`` into ``dest`` safely; returns the files written.

    Every member is checked before it is written (see `safe_member_path`; links and devices are
    rejected too) and written into a hidden staging folder inside ``dest``; only when the whole
    archive has been read are the files moved into place. A marker ``dest/.ARCHIVE.extracted``
    makes a second call a no-op while the archive is unchanged and its files exist.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    marker = _marker(archive, dest)
    signature = {"archive": archive.name, "size": archive.stat().st_size, "mtime_ns": archive.stat().st_mtime_ns}
    if marker.is_file() and not force:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            recorded = json.loads(marker.read_text(encoding="utf-8"))
            members = [dest / m for m in recorded["members"]]
            if all(recorded[k] == v for k, v in signature.items()) and all(m.exists() for m in members):
                logger.info("already extracted: %s", archive.name)
                return members
    staging = dest / f".{archive.name}.extracting"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        if archive.name.lower().endswith(".zip"):
            written = _extract_zip(archive, staging)
        else:
            written = _extract_tar(archive, staging)
        final = []
        for rel in written:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, target)
            final.append(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    marker.write_text(json.dumps({**signature, "members": [str(r) for r in written]}, indent=1), encoding="utf-8")
    logger.info("extracted %d file(s) from %s into %s", len(final), archive.name, dest)
    return final


def _target(staging: Path, name: str) -> tuple[PurePosixPath, Path]:
    rel = safe_member_path(name)
    target = staging.joinpath(*rel.parts)
    root = staging.resolve()
    if not target.resolve().is_relative_to(root):  # belt and braces: e.g. a symlinked folder
        raise UnsafeArchiveError(f"archive member {name!r} resolves outside the destination")
    return rel, target


def _copy_member(source: IO[bytes], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        shutil.copyfileobj(source, out, CHUNK_SIZE)


def _extract_tar(archive: Path, staging: Path) -> list[PurePosixPath]:
    written: list[PurePosixPath] = []
    with tarfile.open(archive, mode="r|*") as tar:  # one streaming pass, any compression
        for member in tar:
            rel, target = _target(staging, member.name)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if not member.isfile():
                kind = "link" if member.issym() or member.islnk() else "special file"
                raise UnsafeArchiveError(f"archive member {member.name!r} is a {kind}; not extracted")
            if not rel.parts:
                continue
            source = tar.extractfile(member)
            assert source is not None
            with source:
                _copy_member(source, target)
            written.append(rel)
    return written


def _extract_zip(archive: Path, staging: Path) -> list[PurePosixPath]:
    written: list[PurePosixPath] = []
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        checked = [(_target(staging, info.filename), info) for info in infos]  # all names first
        for (rel, target), info in checked:
            mode = info.external_attr >> 16
            if mode and stat.S_ISLNK(mode):
                raise UnsafeArchiveError(f"archive member {info.filename!r} is a link; not extracted")
        for (rel, target), info in checked:
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if not rel.parts:
                continue
            with zf.open(info) as source:
                _copy_member(source, target)
            written.append(rel)
    return written


# --------------------------------------------------------------------------------------------
# messages
# --------------------------------------------------------------------------------------------

def download_command(name: str, dest: str | os.PathLike[str], files: Sequence[str] = (), extract: bool = False) -> str:
    """The exact ``crossrank download`` command line for dataset ``name`` into ``dest``."""
    import shlex

    parts = ["crossrank", "download", name, "--dest", os.fspath(dest)]
    for f in files:
        parts += ["--only", f]
    if extract:
        parts.append("--extract")
    return " ".join(shlex.quote(p) for p in parts)


def missing_data_message(data_dir: str | os.PathLike[str], needed: str | Iterable[str], *,
                         registry: Mapping[str, Dataset] | None = None) -> str:
    """Say what is missing under ``data_dir`` and the exact command that fetches it.

    ``needed``: dataset names (``"trec-dl-2019"`` = all its files, expected in
    ``data_dir/trec-dl-2019/``) and/or paths ``"DATASET/FILE"`` relative to ``data_dir`` (a file of
    the dataset, or a file inside one of its archives, e.g. ``"msmarco-passage/collection.tsv"``).
    Returns ``""`` when nothing is missing.
    """
    registry = REGISTRY if registry is None else registry
    data_dir = Path(data_dir)
    items = [needed] if isinstance(needed, str) else list(needed)
    missing: dict[str, list[str]] = {}  # dataset -> missing relative paths
    fetch_files: dict[str, set[str]] = {}
    extract: dict[str, bool] = {}
    unknown: list[str] = []
    for item in items:
        name, _, rest = item.replace("\\", "/").partition("/")
        dataset = registry.get(name)
        if dataset is None:
            if not (data_dir / item).exists():
                unknown.append(item)
            continue
        folder = data_dir / name
        if not rest:
            absent = [f.name for f in dataset.files if not (folder / f.name).exists()]
            if absent:
                missing.setdefault(name, []).extend(absent)
                fetch_files.setdefault(name, set()).update(f.name for f in dataset.files)
            continue
        if (folder / rest).exists():
            continue
        missing.setdefault(name, []).append(rest)
        names = {f.name for f in dataset.files}
        if rest in names:
            fetch_files.setdefault(name, set()).add(rest)
        else:
            holders = [f.name for f in dataset.files if rest in f.contents] or [f.name for f in dataset.files if f.is_archive]
            fetch_files.setdefault(name, set()).update(holders)
            extract[name] = True
    if not missing and not unknown:
        return ""
    lines = [f"missing data under {data_dir}:"]
    for name, paths in missing.items():
        lines += [f"  {name}/{p}" for p in paths]
    lines += [f"  {p} (not provided by `crossrank download`)" for p in unknown]
    if missing:
        lines.append("fetch it with:")
        for name in missing:
            dataset = registry[name]
            wanted = fetch_files.get(name, set())
            only = [] if wanted >= {f.name for f in dataset.files} else [f.name for f in dataset.files if f.name in wanted]
            lines.append("  " + download_command(name, data_dir / name, only, extract.get(name, False)))
            if dataset.terms:
                lines.append(f"  ({dataset.terms})")
    return "\n".join(lines)

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

This package is the public entry point; its parts are `registry` (the datasets and their files),
`transfer` (the resumable, checksummed HTTP download of one file) and `archive` (safe extraction).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from crossrank.data.download.archive import ARCHIVE_SUFFIXES, UnsafeArchiveError, extract_archive, is_archive, safe_member_path
from crossrank.data.download.registry import REGISTRY, Dataset, RemoteFile, get_dataset
from crossrank.data.download.transfer import (
    CHUNK_SIZE,
    USER_AGENT,
    ChecksumError,
    DownloadError,
    DownloadResult,
    download_file,
    file_digest,
)

__all__ = [
    "ARCHIVE_SUFFIXES",
    "CHUNK_SIZE",
    "REGISTRY",
    "USER_AGENT",
    "ChecksumError",
    "Dataset",
    "DownloadError",
    "DownloadResult",
    "RemoteFile",
    "UnsafeArchiveError",
    "download_command",
    "download_dataset",
    "download_file",
    "extract_archive",
    "fetch",
    "file_digest",
    "get_dataset",
    "is_archive",
    "missing_data_message",
    "safe_member_path",
]


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
    dataset = get_dataset(name, REGISTRY if registry is None else registry)  # this package's REGISTRY: tests swap it
    remotes = [dataset.file(f) for f in files] if files else list(dataset.files)
    Path(dest).mkdir(parents=True, exist_ok=True)
    return [fetch(remote, dest, base_url=base_url, force=force, extract=extract, progress=progress, **kwargs)
            for remote in remotes]


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

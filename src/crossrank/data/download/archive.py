"""Safe extraction of downloaded archives (``.tar.gz``, ``.tgz``, ``.tar``, ``.zip``).

Members with an absolute path, a ``..`` component, or that are links/devices are rejected, and
members are staged in a hidden folder so a rejected archive leaves nothing behind.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

logger = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
COPY_CHUNK = 1 << 20


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the destination folder (or is a link/device)."""


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
        shutil.copyfileobj(source, out, COPY_CHUNK)


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

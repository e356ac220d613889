from __future__ import annotations

import gzip

import pytest

from crossrank.data import atomic_write, open_text


def test_open_text_reads_and_writes_gzip(tmp_path):
    path = tmp_path / "q.tsv.gz"
    with open_text(path, "w") as handle:
        handle.write("1\tcafé\n")
    assert gzip.decompress(path.read_bytes()).decode("utf-8") == "1\tcafé\n"
    with open_text(path) as handle:
        assert handle.read() == "1\tcafé\n"


def test_open_text_does_not_split_on_carriage_return(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_bytes(b"1\ta\rb\n2\tc\n")
    with open_text(path) as handle:
        assert handle.readlines() == ["1\ta\rb\n", "2\tc\n"]


def test_atomic_write_success_and_permissions(tmp_path):
    path = tmp_path / "out.txt"
    with atomic_write(path) as handle:
        handle.write("hello\n")
        assert not path.exists()
    assert path.read_text() == "hello\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    assert path.stat().st_mode & 0o044  # not left at mkstemp's 0600


def test_atomic_write_failure_leaves_nothing_and_keeps_old_content(tmp_path):
    new = tmp_path / "new.txt"
    with pytest.raises(RuntimeError):
        with atomic_write(new) as handle:
            handle.write("partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []

    old = tmp_path / "old.txt.gz"
    with atomic_write(old) as handle:
        handle.write("v1\n")
    with pytest.raises(RuntimeError):
        with atomic_write(old) as handle:
            handle.write("v2\n")
            raise RuntimeError("boom")
    assert gzip.decompress(old.read_bytes()) == b"v1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["old.txt.gz"]


def test_atomic_write_gzip_is_deterministic_and_binary_mode(tmp_path):
    a, b = tmp_path / "a.gz", tmp_path / "b.bin"
    for _ in range(2):
        with atomic_write(a) as handle:
            handle.write("x\n")
    first = a.read_bytes()
    with atomic_write(a) as handle:
        handle.write("x\n")
    assert a.read_bytes() == first
    with atomic_write(b, "wb") as handle:
        handle.write(b"\x00\x01")
    assert b.read_bytes() == b"\x00\x01"


def test_atomic_write_rejects_bad_mode_and_missing_dir(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "x", "a"):
            pass
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_write(tmp_path / "no" / "x"):
            pass

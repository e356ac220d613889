"""`atomic_dir`: a folder's content appears at its target only when the block succeeds."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from crossrank.data import atomic_dir


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), hidden ones included."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.fixture
def old_index(tmp_path) -> Path:
    target = tmp_path / "idx"
    target.mkdir()
    (target / "a.txt").write_text("old a")
    (target / "only-old.txt").write_text("old only")
    return target


# ---------------------------------------------------------------------------------------------
# swap (merge=False)
# ---------------------------------------------------------------------------------------------

def test_swap_creates_a_new_folder_only_at_the_end(tmp_path):
    target = tmp_path / "sub" / "idx"
    with atomic_dir(target) as stage:
        assert stage.parent == target.parent and stage.name.startswith(".idx.tmp-")
        assert not any(stage.iterdir())
        (stage / "a.txt").write_text("new a")
        assert not target.exists()
    assert snapshot(target) == {"a.txt": b"new a"}
    assert [p.name for p in target.parent.iterdir()] == ["idx"]
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask()  # plain mkdir, not mkdtemp's 0700


def test_swap_replaces_the_whole_folder_on_success(old_index):
    with atomic_dir(old_index) as stage:
        (stage / "a.txt").write_text("new a")
        (stage / "new.txt").write_text("new only")
        assert snapshot(old_index) == {"a.txt": b"old a", "only-old.txt": b"old only"}  # untouched meanwhile
    assert snapshot(old_index) == {"a.txt": b"new a", "new.txt": b"new only"}
    assert [p.name for p in old_index.parent.iterdir()] == ["idx"]  # neither staging nor old folder left


def test_swap_leaves_the_target_untouched_when_the_block_raises(old_index):
    before = snapshot(old_index)
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_dir(old_index) as stage:
            (stage / "a.txt").write_text("half-written")
            raise RuntimeError("boom")
    assert snapshot(old_index) == before
    assert [p.name for p in old_index.parent.iterdir()] == ["idx"]


def test_swap_puts_the_old_folder_back_when_the_rename_fails(old_index, monkeypatch):
    before = snapshot(old_index)
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(src).name.startswith(".idx.tmp-"):  # the staging folder's rename into place
            raise OSError("no space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="no space"):
        with atomic_dir(old_index) as stage:
            (stage / "a.txt").write_text("new a")
    monkeypatch.undo()
    assert snapshot(old_index) == before
    assert [p.name for p in old_index.parent.iterdir()] == ["idx"]


def test_swap_refuses_a_file(tmp_path):
    target = tmp_path / "idx"
    target.write_text("a file")
    with pytest.raises(NotADirectoryError):
        with atomic_dir(target):
            pass
    assert target.read_text() == "a file" and [p.name for p in tmp_path.iterdir()] == ["idx"]


# ---------------------------------------------------------------------------------------------
# merge=True
# ---------------------------------------------------------------------------------------------

def test_merge_moves_files_in_and_keeps_the_others(old_index):
    with atomic_dir(old_index, merge=True, label="save") as stage:
        assert stage.parent == old_index and stage.name.startswith(".save-")
        (stage / "a.txt").write_text("new a")
        (stage / "b.txt").write_text("new b")
        assert (old_index / "a.txt").read_text() == "old a" and not (old_index / "b.txt").exists()
    assert snapshot(old_index) == {"a.txt": b"new a", "b.txt": b"new b", "only-old.txt": b"old only"}


def test_merge_leaves_the_target_untouched_when_the_block_raises(old_index):
    before = snapshot(old_index)
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_dir(old_index, merge=True) as stage:
            (stage / "a.txt").write_text("half-written")
            (stage / "b.txt").write_text("half-written")
            raise RuntimeError("boom")
    assert snapshot(old_index) == before
    assert sorted(p.name for p in old_index.iterdir()) == ["a.txt", "only-old.txt"]


def test_merge_creates_the_folder(tmp_path):
    target = tmp_path / "a" / "model"
    with atomic_dir(target, merge=True) as stage:
        (stage / "config.json").write_text("{}")
    assert snapshot(target) == {"config.json": b"{}"}

"""`crossrank prepare` killed with SIGKILL while it writes: nothing half-written at the output, the
dead writer's temporary removed by the next run, and the rerun byte-identical to an uninterrupted one
(the kill matrix's `prepare` row; `rerank` and `train` have theirs beside their own tests)."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from crossrank.data.atomic import atomic_write, remove_stale_temporaries


def test_a_dead_writers_temporary_is_removed_and_a_live_ones_kept(tmp_path):
    target = tmp_path / "run[1].trec"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".{target.name}.{dead.pid}.abc123.tmp"
    live = tmp_path / f".{target.name}.{os.getppid()}.def456.tmp"  # the process that started this one: alive
    other = tmp_path / f".other.trec.{dead.pid}.x.tmp"
    for path in (stale, live, other):
        path.write_text("half")
    with atomic_write(target) as f:
        f.write("done\n")
    assert target.read_text() == "done\n"
    assert not stale.exists() and live.exists() and other.exists()
    assert remove_stale_temporaries(target) == []


@pytest.mark.slow
def test_prepare_killed_at_random_points_then_rerun_gives_the_same_bytes(dl19, tmp_path):
    def command(out):
        code = "import sys; from crossrank.cli.main import main; sys.exit(main(sys.argv[1:]))"
        return [sys.executable, "-c", code, "prepare", "--run", str(dl19 / "runs" / "run.dl19.bm25.top100.trec"),
                "--corpus", str(dl19 / "collection.tsv"), "--queries", str(dl19 / "queries.dl19.tsv"), "--output", str(out)]

    rng = random.Random(0)
    for name in ("prepared.jsonl", "prepared.jsonl.gz"):
        reference = tmp_path / "reference" / name
        reference.parent.mkdir(exist_ok=True)
        subprocess.run(command(reference), check=True, capture_output=True)
        for attempt in range(3):
            out = tmp_path / f"killed-{name}-{attempt}" / name
            out.parent.mkdir()
            proc = subprocess.Popen(command(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 120
            while not list(out.parent.glob(f".{name}.*.tmp")) and proc.poll() is None:  # the write has begun
                assert time.time() < deadline
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.05))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            # killed mid-write: nothing at the output; finished first: the whole file
            assert not out.exists() or out.read_bytes() == reference.read_bytes()
            subprocess.run(command(out), check=True, capture_output=True)
            assert out.read_bytes() == reference.read_bytes()
            assert not list(out.parent.glob("*.tmp")) and not list(out.parent.glob(".*.tmp"))  # the dead writer's temporary is gone

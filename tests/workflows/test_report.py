"""The quickstart report's files: written whole (atomically) or not at all."""
from __future__ import annotations

import pytest

from crossrank.workflows.report import plot, table, write_report


def test_write_report_replaces_the_file_whole(tmp_path):
    path = tmp_path / "report.md"
    path.write_text("old report\n")
    rows = {"dl19": {"BM25": {"nDCG@10": 0.5058}}}
    assert write_report(path, [("", "# crossrank"), ("results", table(rows))]) == path
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# crossrank\n\n## results\n\n| dataset | system |") and text.endswith("|\n")
    assert "0.5058" in text and "old report" not in text
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_plot_writes_a_png_and_nothing_else(tmp_path):
    pytest.importorskip("matplotlib")
    history = [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5, "eval_nDCG@10": 0.6}]
    per_query = {"dl19": ({"q1": 0.2, "q2": 0.5}, {"q1": 0.4})}
    path = plot(tmp_path / "report.png", history, "nDCG@10", per_query)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert [p.name for p in tmp_path.iterdir()] == ["report.png"]


def test_a_failed_plot_keeps_the_old_png(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    path = tmp_path / "report.png"
    path.write_bytes(b"old png")

    def crash(self, *args, **kwargs):
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(Figure, "savefig", crash)
    with pytest.raises(RuntimeError, match="renderer failed"):
        plot(path, [{"step": 1, "loss": 1.0}], "nDCG@10", {})
    assert path.read_bytes() == b"old png" and [p.name for p in tmp_path.iterdir()] == ["report.png"]

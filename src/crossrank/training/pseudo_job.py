"""Pseudo-query training data from a corpus file to a training JSONL: what `crossrank pseudo-queries` runs.

    from crossrank.training.corpus_examples import PseudoDataConfig
    from crossrank.training.pseudo_job import PseudoQueriesJob, write_pseudo_queries
    from crossrank.training.teachers import TeacherConfig

    result = write_pseudo_queries(PseudoQueriesJob(PseudoDataConfig("collection.tsv", num_queries=500),
                                                   TeacherConfig(), "pseudo.jsonl"))
    print(result.counts.summary(), result.teacher, result.examples)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crossrank.training.corpus_examples import PseudoDataConfig, PseudoLabelResult
from crossrank.training.teachers import TeacherConfig


@dataclass
class PseudoQueriesJob:
    """Where pseudo-queries come from (`data`), who labels them (`teacher`), where they go (`output`, JSONL)."""

    data: PseudoDataConfig
    teacher: TeacherConfig
    output: str
    show_progress: bool = True

    def check_files(self) -> None:
        """The corpus and the held-out run and split exist: raised before anything is read."""
        for path, what in ((self.data.corpus, "--corpus"), (self.data.exclude_run, "--exclude-run"),
                           (self.data.exclude_split, "--exclude-split")):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"{what} {path}: no such file")


def write_pseudo_queries(job: PseudoQueriesJob) -> PseudoLabelResult:
    """Check `job`'s files, then write its teacher-labelled pseudo-query examples (`write_pseudo_examples`)."""
    from crossrank.training.corpus_examples import write_pseudo_examples

    job.check_files()
    return write_pseudo_examples(job.data, job.teacher, str(job.output), show_progress=job.show_progress)

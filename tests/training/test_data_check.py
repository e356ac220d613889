"""The data check: its figures on a small hand-made set, its problems, and `crossrank train --check-data` on dev600."""
from __future__ import annotations

import re

import pytest

from crossrank.losses import get_loss
from crossrank.training.data_check import DataCheckError, check_data
from crossrank.training.evaluator import RerankingEvaluator
from crossrank.training.examples import TrainingExample as Ex


class WordTokenizer:
    """One token per word, 3 special tokens per pair (like BERT's [CLS] q [SEP] p [SEP])."""

    n_special = 3

    def __init__(self, max_length):
        self.max_length = max_length

    def encode_texts(self, texts):
        return [type("Enc", (), {"ids": t.split()})() for t in texts]


HAND_MADE = [
    Ex("q one", ["a b c", "d e f g h i j k", "x"], [1.0, 0.0, 0.0], "q1", ["p1", "p2", "p3"]),
    Ex("q two", ["a b", "c d"], [0.0, 0.0], "q2", ["p4", "p5"]),  # no positive in this list
    Ex("q one", ["x", "d e f g h i j k"], [1.0, 0.0], "q1", ["p3", "p2"]),  # p3: positive here, negative above
]


def test_figures_on_a_hand_made_set():
    # max_length 10 -> 7 tokens for query + passage: "q one" (2) + 8-token passage loses 3 tokens
    check = check_data(HAND_MADE, get_loss("listnet"), WordTokenizer(10))
    assert (check.queries, check.examples, check.pairs) == (2, 3, 7)
    assert check.positive_pairs == 2 and check.queries_without_positive == 1
    assert check.positives_as_negatives == 1  # (q1, p3)
    assert (check.tokenized_pairs, check.truncated_pairs, check.passage_tokens_lost, check.truncated_queries) == (7, 2, 6, 0)
    # pair lengths with specials: 8, 10, 6, 7, 7, 6, 10 -> median 7
    assert check.median_pair_tokens == 7
    assert not check.problems
    table = check.table()
    assert "2 positive / 5 negative pairs (28.6% positive)" in table and "2 (28.6%)" in table


def test_a_query_longer_than_max_length_is_counted():
    check = check_data([Ex("w " * 20, ["p"], [1.0])], get_loss("bce"), WordTokenizer(10))
    assert check.truncated_queries == 1 and check.truncated_pairs == 1


def test_impossible_set_ups_are_refused_before_any_model_loads():
    no_positive = [Ex("q", ["a", "b"], [0.0, 0.0], "q1"), Ex("r", ["c", "d"], [0.0, 0.0], "q2")]
    with pytest.raises(DataCheckError, match="no positive label among 4 training pairs"):
        check_data(no_positive, get_loss("lambda"), WordTokenizer(16)).raise_problems()
    pairs = [Ex("q", ["a"], [1.0]), Ex("q", ["b"], [0.0])]
    with pytest.raises(DataCheckError, match="'ranknet' compares passages of one query, but every example has a single passage"):
        check_data(pairs, get_loss("ranknet"), WordTokenizer(16)).raise_problems()
    check_data(pairs, get_loss("bce"), WordTokenizer(16)).raise_problems()  # pointwise is fine with pairs
    shuffled = [Ex("q", ["neg", "pos"], [0.0, 1.0])]
    with pytest.raises(DataCheckError, match="'grouped_ce' takes the first passage of each list as its positive"):
        check_data(shuffled, get_loss("grouped_ce"), WordTokenizer(16)).raise_problems()
    empty_eval = RerankingEvaluator("tune", {}, {}, {}, {})
    with pytest.raises(DataCheckError, match="evaluation set is empty"):
        check_data(HAND_MADE, get_loss("listnet"), WordTokenizer(16), evaluator=empty_eval).raise_problems()


def test_teacher_targets_are_not_read_as_labels():
    distill = [Ex("q", ["a", "b"], [3.2, -1.5], "q1"), Ex("r", ["c", "d"], [0.0, -2.0], "q2")]
    check = check_data(distill, get_loss("margin_mse"), WordTokenizer(16))
    assert not check.problems and "teacher scores" in check.table() and "label balance" not in check.table()


def test_first_stage_baseline_is_the_candidates_own_order():
    qrels = {"q1": {"d2": 1}, "q2": {"d9": 1}}
    ev = RerankingEvaluator("tune", {"q1": "a", "q2": "b"}, {"q1": ["d1", "d2", "d3"], "q2": ["d4", "d5"]},
                            {d: d for d in ("d1", "d2", "d3", "d4", "d5")}, qrels, metrics=["RR@10"])
    check = check_data(HAND_MADE, get_loss("listnet"), WordTokenizer(16), evaluator=ev)
    assert check.baseline == {"RR@10": pytest.approx(0.25)}  # q1: 1/2, q2: no relevant candidate -> 0
    assert check.eval_queries == 2 and check.eval_without_relevant == 1


def test_check_data_command_on_dev600(dev600_data, minilm_dir, tmp_path, capsys):
    from crossrank.cli.main import main

    flags = [f"--{k}={v}" for k, v in dev600_data.items()]
    flags += ["--set", f"eval={{queries: {dev600_data['queries']}, corpus: {dev600_data['corpus']}, qrels: {dev600_data['qrels']}, "
              f"run: {dev600_data['run']}, split: {dev600_data['split']}, split_name: tune, depth: 20}}"]
    rc = main(["train", "--check-data", "--model", str(minilm_dir), "--output-dir", str(tmp_path / "o"), "--loss", "lambda",
               "--max-length", "128", "--num-negatives", "7", *flags])
    out = capsys.readouterr().out
    assert rc == 0 and not (tmp_path / "o").exists()  # nothing trained, nothing written
    assert re.search(r"training queries\s+454\n", out) and re.search(r"first-stage baseline \(to beat\)\s+RR@10 0\.\d{4}", out)
    assert "3,632" in out and "12.5% positive" in out and "pairs truncated at max_length 128" in out
    rc = main(["train", "--check-data", "--model", str(minilm_dir), "--output-dir", str(tmp_path / "o"), "--loss", "ranknet",
               "--format", "pairs", *flags])
    assert rc == 2 and "compares passages of one query" in capsys.readouterr().err


def test_candidates_missing_from_the_corpus_are_counted_and_a_mismatch_refused(dev600_data, tmp_path):
    from crossrank.training import DataConfig
    from crossrank.training.datasets import SourceReport, build_examples

    report = SourceReport()
    examples = build_examples(DataConfig(format="lists", num_negatives=7, **dev600_data), report=report)
    assert report.candidates > 9000 and report.missing_text == 0 and len({e.query_id for e in examples}) == 454
    # a corpus missing a tenth of its passages: the run no longer belongs to it
    lines = open(dev600_data["corpus"], encoding="utf-8", newline="\n").read().split("\n")  # not splitlines: texts hold U+2028
    thinned = tmp_path / "collection.thinned.tsv"
    thinned.write_text("\n".join(line for i, line in enumerate(lines) if i % 10 != 3) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"run\.bm25\.top20\.trec: [\d,]+ of [\d,]+ candidates .* are not in .*collection\.thinned\.tsv"):
        build_examples(DataConfig(format="lists", num_negatives=7, **{**dev600_data, "corpus": str(thinned)}))
    # a few missing passages: dropped, counted and shown
    few = tmp_path / "collection.few.tsv"
    few.write_text("\n".join(lines[5:]) + "\n", encoding="utf-8")
    report = SourceReport()
    build_examples(DataConfig(format="lists", num_negatives=7, **{**dev600_data, "corpus": str(few)}), report=report)
    assert 0 < report.missing_text < 0.05 * report.candidates
    table = check_data(HAND_MADE, get_loss("listnet"), WordTokenizer(16), sources=report).table()
    assert re.search(rf"run candidates not in the corpus +{report.missing_text:,} of {report.candidates:,} \(0\.\d%\) dropped", table)


def test_queries_without_positive_count_queries_not_pairs():
    pairs = [Ex("q", ["a"], [1.0], "q1"), Ex("q", ["b"], [0.0], "q1"), Ex("q", ["c"], [0.0], "q1"), Ex("r", ["d"], [0.0], "q2")]
    check = check_data(pairs, get_loss("bce"), WordTokenizer(16))
    assert check.queries_without_positive == 1 and re.search(r"queries with no positive +1 \(50\.0% of queries\)", check.table())


def test_soft_targets_show_their_range_and_spread_not_a_label_balance():
    soft = [Ex("q", ["a", "b", "c"], [2.5, 0.3, -1.0], "q1"), Ex("r", ["c", "d"], [1.25, 0.75], "q2")]
    check = check_data(soft, get_loss("listnet"), WordTokenizer(16))
    table = check.table()
    assert "label balance" not in table and "teacher scores (distillation) from -1 to 2.5" in table
    assert check.target_spread == pytest.approx((3.5 + 0.5) / 2)

"""Every numeric flag of every subcommand is range-checked by argparse before any work: a bad value is
one line naming the flag and exit 2."""
from __future__ import annotations

import argparse

import pytest

from crossrank.cli.main import build_parser, main
from crossrank.cli.types import integer, number


def _subcommands():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_every_numeric_flag_has_a_range():
    bare = [f"{name} {'/'.join(a.option_strings)}" for name, p in _subcommands().items() for a in p._actions if a.type in (int, float)]
    assert not bare, f"numeric flags without a range check (use crossrank.cli.types.integer / number): {bare}"


@pytest.mark.parametrize(("argv", "message"), [
    (["rerank", "--model", "m", "--run", "r", "--corpus", "c", "--queries", "q", "--output", "o", "--depth", "-1"],
     "argument --depth: expected an integer >= 1, got -1"),
    (["rerank", "--model", "m", "--input", "x", "--output", "o", "--batch-size", "0"], "argument --batch-size: expected an integer >= 1, got 0"),
    (["serve", "--model", "m", "--port", "70000"], "argument --port: expected an integer >= 0 and <= 65535, got 70000"),
    (["retrieve", "--index", "i", "--queries", "q", "--output", "o", "--b", "nan"], "argument --b: expected a finite number, got nan"),
    (["train", "--warmup-ratio", "1.5"], "argument --warmup-ratio: expected a number >= 0 and <= 1, got 1.5"),
    (["train", "--learning-rate", "0"], "argument --learning-rate: expected a number > 0, got 0"),
    (["mine", "--queries", "q", "--corpus", "c", "--qrels", "r", "--run", "x", "--output", "o", "--num-negatives", "two"],
     "argument --num-negatives: expected an integer >= 1, got 'two'"),
])
def test_a_bad_value_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2 and message in capsys.readouterr().err


def test_the_types_parse_what_is_in_range():
    assert integer(1)("3") == 3 and integer(0, 10)("10") == 10 and number(0, 1)("0.25") == 0.25 and number()("-2.5") == -2.5
    with pytest.raises(argparse.ArgumentTypeError, match="expected a number > 0, got 0.0"):
        number(0, above=True)("0.0")

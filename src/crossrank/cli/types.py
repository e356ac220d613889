"""Range-checked flag types, the one validation layer of every subcommand's numbers.

`integer(low, high)` and `number(low, high)` parse a flag and check its range up front, so a bad
value ends in argparse's usual one line and exit 2, naming the flag ("argument --depth: expected
an integer >= 1, got -1"), before any file is read or model loaded. Numbers must be finite.
"""
from __future__ import annotations

import argparse
import math


class _Checked:
    kind = ""

    def __init__(self, low=None, high=None, *, above: bool = False):
        self.low, self.high, self.above = low, high, above

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.above else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"<= {self.high:g}")
        return f"{self.kind}{' ' + ' and '.join(parts) if parts else ''}"

    def check(self, value, text: str):
        too_low = self.low is not None and (value <= self.low if self.above else value < self.low)
        if too_low or (self.high is not None and value > self.high):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text}")
        return value

    def parse(self, text: str):
        raise NotImplementedError

    def __call__(self, text: str):
        try:
            value = self.parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}") from None
        return self.check(value, text)

    def __repr__(self) -> str:
        return self.describe()


class integer(_Checked):
    """An int flag within [low, high] (either bound may be None)."""

    kind = "an integer"

    def parse(self, text: str) -> int:
        return int(text)


class number(_Checked):
    """A finite float flag within [low, high] (`above=True`: strictly above low)."""

    kind = "a number"

    def parse(self, text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
        return value

"""Range checks of numeric settings: one rule per field, one message shape for every config.

`check_ranges("train config", config, {"learning_rate": Range(0, open_low=True), ...})` raises
`ValueError("train config: `learning_rate` expects a number > 0, but got -1")` for the first field
out of range. Booleans are never numbers here, NaN and infinities never in range, and an integer
field takes no float (2.5 steps is refused, not rounded).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Range:
    """What one numeric field accepts: `low` <= value (< with `open_low`) <= `high`, an integer with
    `integer`, None with `optional`, and the listed `also` values (for example -1 for "unset")."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    integer: bool = False
    optional: bool = False
    also: tuple = ()

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if value in self.also and (not self.integer or isinstance(value, int)):
            return True
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.open_low else '>='} {self.low:g}")
        if self.high is not None:
            bounds.append(f"<= {self.high:g}")
        text = f"{kind} {' and '.join(bounds)}".rstrip()
        extras = [repr(v) for v in self.also] + (["None"] if self.optional else [])
        return text + (f" (or {' or '.join(extras)})" if extras else "")


def read_yaml_numbers(obj: Any, rules: Mapping[str, Range]) -> None:
    """Set each float field of `obj` that holds text such as '1e-4' to its number: YAML 1.1 (PyYAML) reads
    an exponent without a dot as a string, and users write learning rates that way."""
    for name, rule in rules.items():
        value = getattr(obj, name)
        if not rule.integer and isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                continue
            setattr(obj, name, number)


def check_ranges(owner: str, obj: Any, rules: Mapping[str, Range]) -> None:
    """ValueError naming `owner` and the first field of `obj` (attributes, or keys of a mapping) out of its range."""
    for name, rule in rules.items():
        value = obj[name] if isinstance(obj, Mapping) else getattr(obj, name)
        if not rule.accepts(value):
            raise ValueError(f"{owner}: `{name}` expects {rule.describe()}, but got {value!r}")

"""Small parsing helpers shared by the line readers; each raises FormatError with file and line."""
from __future__ import annotations

import json
import math
from typing import Any

from crossrank.data.errors import FormatError
from crossrank.data.textfiles import PathLike


def split_tab_fields(path: PathLike, number: int, line: str, names: tuple[str, ...]) -> list[str]:
    """Split ``line`` on tabs into exactly ``len(names)`` fields."""
    fields = line.split("\t")
    if len(fields) != len(names):
        raise FormatError(
            path, number, f"expected {len(names)} tab-separated fields ({' '.join(names)}), got {len(fields)}"
        )
    return fields


def split_id_text(path: PathLike, number: int, line: str, id_name: str) -> tuple[str, str]:
    """Split ``id<TAB>text`` at the first tab (the text is the rest of the line)."""
    key, tab, text = line.partition("\t")
    if not tab:
        raise FormatError(path, number, f"expected '{id_name}<TAB>text', found no tab")
    key = key.strip()
    if not key:
        raise FormatError(path, number, f"empty {id_name}")
    return key, text


def parse_int(path: PathLike, number: int, value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise FormatError(path, number, f"{what} must be an integer, got {value!r}") from None


def parse_score(path: PathLike, number: int, value: str) -> float:
    try:
        score = float(value)
    except ValueError:
        raise FormatError(path, number, f"score must be a number, got {value!r}") from None
    if math.isnan(score):
        raise FormatError(path, number, "score is NaN")
    return score


def parse_json_object(path: PathLike, number: int, line: str) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise FormatError(path, number, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise FormatError(path, number, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def require_str(path: PathLike, number: int, obj: dict[str, Any], key: str, default: str | None = None) -> str:
    """Value of ``obj[key]`` as a string; ids written as JSON numbers are accepted and kept as text."""
    if key not in obj:
        if default is not None:
            return default
        raise FormatError(path, number, f"missing key {key!r}")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        if value is None and default is not None:
            return default
        raise FormatError(path, number, f"key {key!r} must be a string, got {type(value).__name__}")
    return str(value)


def is_int_at_least(value: Any, low: int | None = None) -> bool:
    """An int (not a bool) and, with `low`, >= low: the range check of every integer setting."""
    return not isinstance(value, bool) and isinstance(value, int) and (low is None or value >= low)

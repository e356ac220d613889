"""Property-based test of the YAML train config: any mutation of a real recipe gives a TrainConfig or
a ValueError naming the problem (`crossrank train` answers it with exit 2), never another exception."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossrank.training import TrainConfig

RECIPES = sorted((Path(__file__).resolve().parents[2] / "examples" / "recipes").glob("*.yaml"))
EXAMPLES = int(os.environ.get("CROSSRANK_FUZZ_EXAMPLES", "60"))
PIECES = ["\t", "\n", ": ", "- ", "{", "}", "[", "]", "'", '"', "&a", "*a", "!!python/object", "~", "null", "-1", "0", "1e999",
          ".nan", "yes", "   ", "#", "%", "@", "\\", "\x00", "\ufeff", "eval:", "data:", "loss_options:"]


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(RECIPES), st.lists(st.tuples(st.floats(0, 1), st.sampled_from(PIECES) | st.text(max_size=4), st.booleans()),
                                          min_size=1, max_size=4))
def test_a_mutated_recipe_is_a_config_or_a_value_error(recipe, edits):
    text = recipe.read_text(encoding="utf-8")
    for where, piece, delete in edits:
        at = int(where * len(text))
        text = text[:at] + text[at + len(piece):] if delete else text[:at] + piece + text[at:]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / recipe.name
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            config = TrainConfig.from_yaml(path)
        except ValueError as exc:
            assert str(exc), "an error without a message"
            return
        assert isinstance(config, TrainConfig) and config.model


def test_the_recipes_are_there():
    assert len(RECIPES) >= 10
    with pytest.raises(ValueError, match="invalid YAML"):
        with tempfile.TemporaryDirectory() as folder:
            bad = Path(folder) / "bad.yaml"
            bad.write_text("model: [unclosed\n")
            TrainConfig.from_yaml(bad)

"""The RankingLoss modules: batching, config, registry, MNRL negatives, and package hygiene."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import crossrank.losses as L
from crossrank.losses import functional as F

LOSSES_DIR = Path(L.__file__).resolve().parent
NAMES = ["bce", "mse", "ranknet", "margin_mse", "listnet", "listmle", "plistmle", "lambda", "lambda_loss",
         "grouped_ce", "mnrl", "cached_mnrl"]


def test_registry_names_are_exact():
    assert L.loss_names() == NAMES
    for name in NAMES:
        loss = L.get_loss(name)
        assert isinstance(loss, L.RankingLoss)
        assert isinstance(loss.config, dict)
    assert type(L.get_loss("lambda_loss")) is L.LambdaLoss


@pytest.mark.parametrize("name", ["lamb", "Lambda", "ListNet", "bce ", "", "ce", None])
def test_registry_unknown_name_lists_valid_names(name):
    with pytest.raises(ValueError) as info:
        L.get_loss(name)
    for valid in NAMES:
        assert valid in str(info.value)


def test_registry_options_and_config():
    loss = L.get_loss("lambda", weighting="ndcg2", k=5, sigma=2.0)
    assert loss.config == {"weighting": "ndcg2", "k": 5, "sigma": 2.0, "mu": 10.0, "eps": 1e-10,
                           "reduction_log": "binary"}
    assert L.get_loss("ranknet").config == {"sigma": 1.0, "k": None, "reduction_log": "binary"}
    assert L.get_loss("bce", pos_weight=torch.tensor(2.0)).config == {"pos_weight": 2.0}
    assert L.get_loss("mnrl").config == {"scale": 10.0, "num_negatives": 4, "activation": "sigmoid"}
    assert L.get_loss("cached_mnrl", mini_batch_size=8).config["mini_batch_size"] == 8
    assert L.get_loss("plistmle").config == {"lambda_weight": "default", "eps": 1e-10}
    assert L.get_loss("grouped_ce", temperature=0.05).config == {"temperature": 0.05}
    with pytest.raises(ValueError, match="unknown option.*sigma"):
        L.get_loss("listnet", sigma=1.0)
    with pytest.raises(ValueError, match="weighting"):
        L.get_loss("lambda", weighting="ndcg3")
    with pytest.raises(ValueError, match="mini_batch_size"):
        L.get_loss("cached_mnrl", mini_batch_size=0)
    with pytest.raises(ValueError, match="num_negatives"):
        L.get_loss("mnrl", num_negatives=-1)


class RecordingScorer:
    def __init__(self, fn=None):
        self.calls = []
        self.fn = fn or (lambda q, p: float(len(q) - 2 * len(p)) / 10)

    def __call__(self, pairs):
        self.calls.append(list(pairs))
        return torch.tensor([self.fn(q, p) for q, p in pairs], requires_grad=True)


BATCH = {
    "queries": ["q one", "q two"],
    "passages": [["a", "bbb", "cc"], ["dddd", "e"]],
    "labels": [[1.0, 0.0, 0.0], [0.0, 1.0]],
}


@pytest.mark.parametrize("name", ["bce", "mse", "ranknet", "margin_mse", "listnet", "listmle", "plistmle", "lambda",
                                  "grouped_ce"])
def test_forward_scores_once_and_pads(name):
    scorer = RecordingScorer()
    loss = L.get_loss(name)(scorer, BATCH)
    assert scorer.calls == [[("q one", "a"), ("q one", "bbb"), ("q one", "cc"), ("q two", "dddd"), ("q two", "e")]]
    flat = torch.tensor([scorer.fn(q, p) for q, p in scorer.calls[0]])
    scores = torch.tensor([[flat[0], flat[1], flat[2]], [flat[3], flat[4], 0.0]])
    labels = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    fn = {"lambda": F.lambda_loss}.get(name, getattr(F, name, None))
    expected = fn(scores, mask) if name == "grouped_ce" else fn(scores, labels, mask)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)


def test_grouped_ce_ignores_labels():
    batch = {k: v for k, v in BATCH.items() if k != "labels"}
    assert math_close(L.get_loss("grouped_ce")(RecordingScorer(), batch), L.get_loss("grouped_ce")(RecordingScorer(), BATCH))


def math_close(a, b):
    return abs(a.item() - b.item()) < 1e-7


@pytest.mark.parametrize(
    "batch,match",
    [
        ({"queries": ["q"], "passages": [["a", "b"]], "labels": [[1.0]]},
         r"ranknet expects labels\[0\] to have as many entries as passages\[0\], but got 1 and 2"),
        ({"queries": ["q"], "passages": [["a"]]}, "missing"),
        ({"queries": ["q", "r"], "passages": [["a"]], "labels": [[1.0]]}, "as many passage lists as queries"),
        ({"queries": ["q"], "passages": [[]], "labels": [[]]}, r"passages\[0\] is empty"),
        ({"queries": ["q"], "passages": ["ab"], "labels": [[1.0, 0.0]]}, "list of lists of strings"),
        ({"queries": [], "passages": [], "labels": []}, "empty batch"),
        ({"queries": ["q"], "passages": [["a"]], "labels": [["x"]]}, "number"),
        ("not a batch", "mapping"),
    ],
)
def test_batch_validation(batch, match):
    with pytest.raises((ValueError, TypeError, KeyError), match=match):
        L.get_loss("ranknet")(RecordingScorer(), batch)


def test_scorer_output_validation():
    loss = L.get_loss("listnet")
    with pytest.raises(ValueError, match=r"1-D tensor of 5 scores, but got shape \(5, 1\)"):
        loss(lambda pairs: torch.zeros(len(pairs), 1), BATCH)
    with pytest.raises(TypeError, match="torch.Tensor"):
        loss(lambda pairs: [0.0] * len(pairs), BATCH)
    with pytest.raises(TypeError, match="floating-point"):
        loss(lambda pairs: torch.zeros(len(pairs), dtype=torch.long), BATCH)


def test_labels_follow_scorer_device_and_dtype():
    loss = L.get_loss("lambda")(lambda pairs: torch.zeros(len(pairs), dtype=torch.float64, requires_grad=True), BATCH)
    assert loss.dtype == torch.float64


# ------------------------------------------------------------------------- MNRL negatives


MNRL_BATCH = {
    "queries": ["q0", "q1", "q2"],
    "passages": [["p0", "n0a", "n0b"], ["p1"], ["p2", "n2a"]],
}


def groups_from_calls(scorer):
    (pairs,) = scorer.calls
    groups = {}
    for q, p in pairs:
        groups.setdefault(q, []).append(p)
    return groups


def test_mnrl_uses_all_in_batch_negatives_when_unlimited():
    scorer = RecordingScorer()
    L.get_loss("mnrl", num_negatives=None)(scorer, MNRL_BATCH)
    groups = groups_from_calls(scorer)
    everything = {p for plist in MNRL_BATCH["passages"] for p in plist}
    for q, own in zip(MNRL_BATCH["queries"], MNRL_BATCH["passages"]):
        group = groups[q]
        assert group[0] == own[0]  # positive first
        assert group[len(group) - (len(own) - 1):] == own[1:]  # hard negatives last
        assert sorted(group) == sorted(own + sorted(everything - set(own)))


@pytest.mark.parametrize("num_negatives", [0, 1, 2])
def test_mnrl_limits_in_batch_negatives(num_negatives):
    torch.manual_seed(0)
    scorer = RecordingScorer()
    L.get_loss("mnrl", num_negatives=num_negatives)(scorer, MNRL_BATCH)
    groups = groups_from_calls(scorer)
    for q, own in zip(MNRL_BATCH["queries"], MNRL_BATCH["passages"]):
        group = groups[q]
        in_batch = group[1: len(group) - (len(own) - 1)]
        assert len(in_batch) == num_negatives and len(set(in_batch)) == num_negatives
        assert not set(in_batch) & set(own)
        assert group[0] == own[0] and group[len(group) - (len(own) - 1):] == own[1:]


def test_mnrl_value_with_unequal_hard_negatives():
    scorer = RecordingScorer()
    loss = L.get_loss("mnrl", num_negatives=None, scale=3.0)(scorer, MNRL_BATCH)
    expected = 0.0
    for q, group in groups_from_calls(scorer).items():
        logits = torch.tensor([3.0 * torch.sigmoid(torch.tensor(scorer.fn(q, p))).item() for p in group])
        expected += -(logits[0] - torch.logsumexp(logits, 0)).item()
    assert loss.item() == pytest.approx(expected / 3, abs=1e-6)


# ------------------------------------------------------------------------------- hygiene


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield ("." * node.level) + (node.module or "")


def test_losses_import_nothing_else_from_crossrank_and_not_sentence_transformers():
    for path in LOSSES_DIR.glob("*.py"):
        for name in _imports(path):
            assert not name.startswith("sentence_transformers"), (path.name, name)
            assert not name.startswith("crossrank") or name.startswith("crossrank.losses"), (path.name, name)
            assert not name.startswith(".."), (path.name, name)


def test_no_assert_statements_in_losses():
    for path in LOSSES_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        assert not any(isinstance(node, ast.Assert) for node in ast.walk(tree)), path.name


def test_package_exports():
    for name in ["functional", "get_loss", "RankingLoss", "BCELoss", "MSELoss", "RankNetLoss", "MarginMSELoss",
                 "ListNetLoss", "ListMLELoss", "PListMLELoss", "LambdaLoss", "GroupedCELoss",
                 "MultipleNegativesRankingLoss", "CachedMultipleNegativesRankingLoss"]:
        assert hasattr(L, name) and name in L.__all__


def test_labels_may_be_tensors():
    scorer = RecordingScorer()
    as_lists = L.get_loss("listnet")(scorer, BATCH).item()
    rows = {**BATCH, "labels": [torch.tensor(r) for r in BATCH["labels"]]}
    assert L.get_loss("listnet")(scorer, rows).item() == pytest.approx(as_lists)
    square = {"queries": ["q"], "passages": [["a", "b"]], "labels": torch.tensor([[1.0, 0.0]])}
    assert L.get_loss("ranknet")(scorer, square).item() > 0
